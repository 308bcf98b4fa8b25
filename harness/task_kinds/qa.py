"""qa: a short answer, judged against one or several acceptable answers (SQuAD-style normalisation)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.metric_types import MetricDefinition, Scorer
from harness.metrics.scoring import qa_scorer
from harness.metrics.task_metrics import mean_of
from harness.task_types import TaskType, register_task_type


def _scorer(labels: Sequence[str]) -> Scorer:
    return qa_scorer()


register_task_type(
    TaskType(
        name="qa",
        scorer=_scorer,
        metrics=(
            MetricDefinition("exact_match", mean_of("correct"), ("correct",)),
            MetricDefinition("f1", mean_of("value"), ("value",)),
            MetricDefinition("contains_answer", mean_of("contains_answer"), ("contains_answer",)),
        ),
        primary_metric="f1",
        multi_answer=True,
    )
)
