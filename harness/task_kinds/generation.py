"""generation: free text, judged by ROUGE-L, chrF and embedding similarity to the reference."""

from __future__ import annotations

from collections.abc import Sequence

from harness.metric_types import MetricDefinition, Scorer
from harness.metrics.scoring import generation_scorer
from harness.metrics.task_metrics import mean_of
from harness.task_types import TaskType, register_task_type


def _scorer(labels: Sequence[str]) -> Scorer:
    return generation_scorer()


register_task_type(
    TaskType(
        name="generation",
        scorer=_scorer,
        metrics=(
            MetricDefinition("rouge_l", mean_of("rouge_l"), ("rouge_l",)),
            MetricDefinition("chrf", mean_of("chrf"), ("chrf",)),
            MetricDefinition("embedding_similarity", mean_of("similarity"), ("similarity",)),
            MetricDefinition("exact_match", mean_of("correct"), ("correct",)),
        ),
        primary_metric="rouge_l",
        output_similarity=True,
    )
)
