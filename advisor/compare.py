"""Every pair of rungs compared on the primary metric, paired by test example.

Built from the Assessment's own records, so `report` and `gate` can recompute it from the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from advisor.assessment import PairedComparison, RungResult
from harness.comparison import mcnemar
from harness.task_metrics import BINARY_METRICS, Columns, build_columns, paired_metric


def rung_columns(result: RungResult, labels: Sequence[str]) -> Columns:
    """Per-example metric columns of a rung, from its records."""
    records = result.records
    return build_columns(
        [r.target for r in records], [r.prediction for r in records], [r.scores for r in records], labels
    )


def compare_rungs(
    results: Sequence[RungResult], task_type: str, labels: Sequence[str], *, seed: int, resamples: int
) -> list[PairedComparison]:
    """A minus B for every pair of rungs that answered the same examples (in the same order)."""
    comparisons = []
    columns = {r.name: rung_columns(r, labels) for r in results}
    for a, b in combinations(results, 2):
        if [r.id for r in a.records] != [r.id for r in b.records] or not a.records:
            continue
        metric = a.primary_metric
        paired = paired_metric(
            task_type, metric, columns[a.name], columns[b.name], len(a.records), seed=seed, resamples=resamples
        )
        exact = None
        if metric in BINARY_METRICS:
            exact = mcnemar([r.correct for r in a.records], [r.correct for r in b.records]).p_value
        comparisons.append(
            PairedComparison(
                a=a.name,
                b=b.name,
                metric=metric,
                difference=paired.difference,
                ci_low=paired.ci_low,
                ci_high=paired.ci_high,
                p_value=paired.p_value,
                mcnemar_p_value=exact,
                n=paired.n,
            )
        )
    return comparisons
