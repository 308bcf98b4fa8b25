"""The majority-class baseline: answer the commonest train + validation label to every test example.

A classification rung that does not clearly beat it has learned nothing the label counts did not
already say (a spam filter that answers "ham" to everything scores 0.86 accuracy on 13.5 % spam).
Tables show it as a reference row; the recommendation names every rung that does not clearly beat it.
"""

from __future__ import annotations

from advisor.decision.assessment import Evidence, LatencySummary, MetricValue, RecordSummary, RungResult, TokenSummary
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.metrics.task_metrics import build_columns, estimates
from harness.task_types import get_task_type

NAME = "majority class"


def majority_baseline(assessment: Evidence, measurement: Measurement = DEFAULT_MEASUREMENT) -> RungResult | None:
    """The baseline as a rung answering the same test examples, or None for other task types."""
    task = assessment.task
    label = task.majority_label
    if not get_task_type(task.type).labelled or label is None:
        return None
    if not assessment.rungs or not assessment.rungs[0].records:
        return None
    records = [
        RecordSummary(
            id=r.id,
            input=r.input,
            target=r.target,
            output=label,
            prediction=label,
            correct=r.target == label,
            prompt_tokens=0,
            completion_tokens=0,
            latency_s=0.0,
            scores={"correct": float(r.target == label), "value": float(r.target == label)},
        )
        for r in assessment.rungs[0].records
    ]
    columns = build_columns(
        [r.target for r in records], [r.prediction for r in records], [r.scores for r in records], task.labels
    )
    quality = estimates(task.type, columns, len(records), measurement)
    return RungResult(
        name=f"{NAME} (always '{label}')",
        kind="majority",
        step=0,
        config={"label": label},
        primary_metric=assessment.rungs[0].primary_metric,
        metrics={k: MetricValue(value=e.value, ci_low=e.ci_low, ci_high=e.ci_high) for k, e in quality.items()},
        latency=LatencySummary(p50_s=None, p95_s=None, sample_size=0, batched_examples_per_s=None),
        tokens=TokenSummary(prompt_mean=0, completion_mean=0),
        no_label_outputs=0,
        computed=0,
        reused=0,
        records=records,
    )
