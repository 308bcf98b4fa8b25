"""extraction: a JSON object of fields, judged field by field (micro-averaged over the test set)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.metric_types import MetricDefinition, Scorer
from harness.metrics.scoring import extraction_scorer
from harness.metrics.task_metrics import mean_of, ratio_of
from harness.task_types import TaskType, register_task_type


def _scorer(labels: Sequence[str]) -> Scorer:
    return extraction_scorer()


register_task_type(
    TaskType(
        name="extraction",
        scorer=_scorer,
        metrics=(
            MetricDefinition(
                "field_f1", ratio_of([("tp", 2.0)], [("tp", 2.0), ("fp", 1.0), ("fn", 1.0)]), ("tp", "fp", "fn")
            ),
            MetricDefinition("field_precision", ratio_of([("tp", 1.0)], [("tp", 1.0), ("fp", 1.0)]), ("tp", "fp")),
            MetricDefinition("field_recall", ratio_of([("tp", 1.0)], [("tp", 1.0), ("fn", 1.0)]), ("tp", "fn")),
            MetricDefinition("exact_match", mean_of("correct"), ("correct",)),
            MetricDefinition("json_valid", mean_of("valid"), ("valid",)),
        ),
        primary_metric="field_f1",
        json_target=True,
    )
)
