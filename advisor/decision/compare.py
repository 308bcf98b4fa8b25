"""Every pair of rungs compared on the primary metric, paired by test example.

Built from the Assessment's own records, so `report` and `gate` can recompute it from the JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from advisor.decision.assessment import PairedComparison, RungResult
from advisor.decision.claims import seed_values
from harness.inference.scoring_modes import SCORING_MODES
from harness.metrics.comparison import PairedDifference, mcnemar
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.metrics.simultaneous import PairInterval, Simultaneous, simultaneous
from harness.metrics.task_metrics import (
    BINARY_METRICS,
    Columns,
    MeanOf,
    build_columns,
    definitions,
    paired_metric,
)


def rung_columns(result: RungResult, labels: Sequence[str]) -> Columns:
    """Per-example metric columns of a rung, from its records."""
    records = result.records
    return build_columns(
        [r.target for r in records], [r.prediction for r in records], [r.scores for r in records], labels
    )


@dataclass(frozen=True)
class Gap:
    """metric(A) - metric(B) on the same examples, with McNemar's p for 0/1 metrics."""

    paired: PairedDifference
    mcnemar_p: float | None

    def clearly_negative(self, confidence: float) -> bool:
        """The interval lies below zero, and for 0/1 metrics McNemar agrees (the bootstrap is overconfident
        when few answers differ)."""
        exact_ok = self.mcnemar_p is None or self.mcnemar_p < 1 - confidence
        return self.paired.ci_high < 0 and exact_ok


def compare_pair(
    a: RungResult,
    b: RungResult,
    task_type: str,
    labels: Sequence[str],
    metric: str,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> Gap:
    """A minus B on the metric, paired by test example (the records must be the same examples, in order)."""
    paired = paired_metric(
        task_type,
        metric,
        rung_columns(a, labels),
        rung_columns(b, labels),
        len(a.records),
        measurement,
    )
    exact = None
    if metric in BINARY_METRICS:
        exact = mcnemar([r.correct for r in a.records], [r.correct for r in b.records]).p_value
    return Gap(paired, exact)


@dataclass(frozen=True)
class Together:
    """Rungs compared all at once, with intervals that hold together whichever rung is best (MCB)."""

    names: tuple[str, ...]
    family: Simultaneous

    def gap(self, a: RungResult, b: RungResult) -> PairInterval:
        """metric(a) - metric(b), with the interval that decides whether either clearly beats the other."""
        return self.family.pair(self.names.index(a.name), self.names.index(b.name))


def compare_together(
    rungs: Sequence[RungResult],
    task_type: str,
    labels: Sequence[str],
    metric: str,
    measurement: Measurement = DEFAULT_MEASUREMENT,
    *,
    upward: bool = False,
) -> Together:
    """Multiple comparisons with the best over `rungs`, paired by test example (harness/metrics/simultaneous.py);
    `upward`: the rungs come in the ladder's order and each is compared only with those after it."""
    definition = next((d for d in definitions(task_type) if d.name == metric), None)
    if definition is None:
        raise ValueError(f"no metric '{metric}' for task type '{task_type}'")
    statistic = definition.statistic
    columns = [seed_columns(rung, labels) for rung in rungs]
    per_example = None
    if isinstance(statistic, MeanOf):  # a mean of per-example values: each resample gets its own error
        per_example = [np.mean([c[statistic.column] for c in seeds], axis=0) for seeds in columns]
    family = simultaneous(
        [_seed_mean(statistic, seeds) for seeds in columns],
        [[(r.prediction, r.output, r.scores.get("value")) for r in rung.records] for rung in rungs],
        len(rungs[0].records) if rungs else 0,
        measurement,
        extra_variance=[_seed_variance(rung, metric) for rung in rungs],
        per_example=per_example,
        upward=upward,
    )
    return Together(tuple(rung.name for rung in rungs), family)


def seed_columns(result: RungResult, labels: Sequence[str]) -> list[Columns]:
    """The rung's columns, then those of each seed it was retrained from (the same examples, in order)."""
    targets = [r.target for r in result.records]
    return [
        rung_columns(result, labels),
        *(build_columns(targets, run.predictions, run.scores, labels) for run in result.seed_runs),
    ]


def _seed_variance(result: RungResult, metric: str) -> float:
    """The variance of the seeds' mean that comes from the seeds: their sample variance over their count."""
    values = seed_values(result, metric)
    if len(values) < 2:
        return 0.0
    return float(np.var(values, ddof=1)) / len(values)


def _seed_mean(
    statistic: Callable[[Columns, np.ndarray], np.ndarray], columns: list[Columns]
) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic averaged over a rung's training seeds, as a function of the resampled indices."""
    return lambda idx: np.mean([statistic(c, idx) for c in columns], axis=0)


def describe_gap(gap: PairInterval, metric: str) -> str:
    """accuracy +0.097 [-0.012, +0.206], MDE 0.142 at n=124: the interval that decided, and what it could see."""
    if gap.differing == 0:
        return f"{metric} {gap.difference:+.3f}, the same answers on all {gap.n} examples"
    text = f"{metric} {gap.difference:+.3f} [{gap.ci_low:+.3f}, {gap.ci_high:+.3f}]"
    seen = f"MDE {gap.mde:.3f}" if gap.mde == gap.mde else f"only {gap.differing} examples differ"
    return f"{text}, {seen} at n={gap.n}"


def same_examples(a: RungResult, b: RungResult) -> bool:
    """Both answered the same test examples in the same order (so they can be paired)."""
    return bool(a.records) and [r.id for r in a.records] == [r.id for r in b.records]


def compare_rungs(
    results: Sequence[RungResult], task_type: str, labels: Sequence[str], measurement: Measurement
) -> list[PairedComparison]:
    """A minus B for every pair of rungs that answered the same examples (in the same order)."""
    comparisons = []
    for a, b in combinations(results, 2):
        if not same_examples(a, b):
            continue
        metric = a.primary_metric
        gap = compare_pair(a, b, task_type, labels, metric, measurement)
        paired = gap.paired
        comparisons.append(
            PairedComparison(
                a=a.name,
                b=b.name,
                metric=metric,
                difference=paired.difference,
                ci_low=paired.ci_low,
                ci_high=paired.ci_high,
                p_value=paired.p_value,
                mcnemar_p_value=gap.mcnemar_p,
                n=paired.n,
                note=scoring_note(a, b),
            )
        )
    return comparisons


def scoring_note(a: RungResult, b: RungResult) -> str:
    """Say so when two rungs' answers were read differently (likelihoods against parsed text, say)."""
    if not a.scoring or not b.scoring or scoring_family(a.scoring) == scoring_family(b.scoring):
        return ""
    return f"scored differently: {a.name} by {scoring_text(a.scoring)}, {b.name} by {scoring_text(b.scoring)}"


def scoring_family(scoring: str) -> str:
    """Exact likelihoods read locally or through a completions echo are the same reading."""
    return scoring.replace("echo", "likelihood")


def scoring_text(scoring: str) -> str:
    """A rung's scoring (one mode, or several joined by commas) in words."""
    return ", ".join(SCORING_MODES.get(mode, mode) for mode in scoring.split(", "))
