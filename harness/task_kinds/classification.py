"""classification: the answer is one of the task's labels."""

from __future__ import annotations

from harness.metric_types import MetricDefinition
from harness.metrics.scoring import classification_scorer
from harness.metrics.task_metrics import macro_f1_of, mean_of
from harness.task_types import TaskType, register_task_type

register_task_type(
    TaskType(
        name="classification",
        scorer=classification_scorer,
        metrics=(
            MetricDefinition("accuracy", mean_of("correct"), ("correct",)),
            MetricDefinition("macro_f1", macro_f1_of, ("target_code", "prediction_code", "n_classes")),
        ),
        primary_metric="accuracy",
        labelled=True,
    )
)
