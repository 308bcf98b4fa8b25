"""Each task type's metrics as statistics over per-example columns, vectorised over bootstrap resamples.

A rung's answers become columns (correct, value, field counts, class codes, ...), one entry per test
example. A metric maps (columns, (k, n) resampled indices) to k values, so one definition serves the
rung's own interval and the paired difference between two rungs on the same resamples. Ratio metrics
(field precision/recall/F1) sum their counts inside each resample, which is what micro-averaging means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.metric_types import Columns, MetricDefinition, Statistic
from harness.metrics.bootstrap import Estimate, bootstrap, macro_f1_rows
from harness.metrics.comparison import PairedDifference, paired_bootstrap
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.task_types import get_task_type
from harness.types import Record

BINARY_METRICS = {"accuracy", "exact_match", "json_valid", "contains_answer"}  # McNemar applies


@dataclass(frozen=True)
class MeanOf:
    """The mean of one per-example column per resample (a metric whose per-example values are known)."""

    column: str

    def __call__(self, columns: Columns, idx: np.ndarray) -> np.ndarray:
        return columns[self.column][idx].mean(axis=1)


def mean_of(column: str) -> Statistic:
    """The mean of one column per resample."""
    return MeanOf(column)


def ratio_of(numerator: Sequence[tuple[str, float]], denominator: Sequence[tuple[str, float]]) -> Statistic:
    """sum(weighted numerator columns) / sum(weighted denominator columns) per resample; 0 when empty."""

    def statistic(columns: Columns, idx: np.ndarray) -> np.ndarray:
        top = sum(weight * columns[name][idx].sum(axis=1) for name, weight in numerator)
        bottom = sum(weight * columns[name][idx].sum(axis=1) for name, weight in denominator)
        return np.divide(top, bottom, out=np.zeros_like(bottom, dtype=np.float64), where=bottom > 0)

    return statistic


def macro_f1_of(columns: Columns, idx: np.ndarray) -> np.ndarray:
    """Macro-F1 over the class codes per resample."""
    classes = int(columns["n_classes"][0])
    return macro_f1_rows(
        columns["target_code"][idx].astype(np.int64), columns["prediction_code"][idx].astype(np.int64), classes
    )


def definitions(task_type: str) -> tuple[MetricDefinition, ...]:
    """The metrics a task type reports (its registration in harness/task_kinds/)."""
    return get_task_type(task_type).metrics


def primary_metric(task_type: str) -> str:
    """The metric that ranks rungs of this task type by default."""
    return get_task_type(task_type).primary_metric


def build_columns(
    targets: Sequence[str],
    predictions: Sequence[str | None],
    scores: Sequence[dict[str, float]],
    labels: Sequence[str] = (),
) -> Columns:
    """Per-example columns from each example's numeric score parts (plus class codes when there are labels).

    Class codes come from the label list, so two rungs' columns share one coding.
    """
    columns: Columns = {}
    names = sorted({name for row in scores for name in row})
    for name in names:
        columns[name] = np.asarray([float(row.get(name, np.nan)) for row in scores], dtype=np.float64)
    if labels:
        code = {label: i for i, label in enumerate(labels)}
        columns["target_code"] = np.asarray([code.get(t, -1) for t in targets], dtype=np.float64)
        columns["prediction_code"] = np.asarray(
            [code.get(p, -1) if p is not None else -1 for p in predictions], dtype=np.float64
        )
        columns["n_classes"] = np.full(len(targets), len(labels), dtype=np.float64)
    return columns


def score_parts(record: Record) -> dict[str, float]:
    """The numeric parts of a record's score (correct, value, field counts, ROUGE-L, ...)."""
    parts = {"correct": float(record.score.correct), "value": float(record.score.value)}
    for name, value in record.score.detail.items():
        if isinstance(value, (bool, int, float)):
            parts[name] = float(value)
    return parts


IMBALANCE_RATIO = 3  # largest class at least this many times the smallest: accuracy rewards the majority


@dataclass(frozen=True)
class PrimaryChoice:
    """The metric that ranks the rungs, and why it is that one (the report says both)."""

    metric: str
    reason: str


def choose_primary_metric(task_type: str, chosen: str | None, label_counts: Mapping[str, int]) -> PrimaryChoice:
    """The task file's choice; else macro-F1 for a classification task whose labels are imbalanced in
    train + validation (never decided from test); else the task type's default."""
    if chosen:
        return PrimaryChoice(chosen, "set in the task file (primary_metric)")
    default = primary_metric(task_type)
    if get_task_type(task_type).labelled and len(label_counts) > 1:
        largest, smallest = max(label_counts.values()), min(label_counts.values())
        if largest >= IMBALANCE_RATIO * smallest:
            return PrimaryChoice(
                "macro_f1",
                f"the labels are imbalanced in train + validation (largest class {largest} examples, smallest "
                f"{smallest}: {IMBALANCE_RATIO}x or more), so accuracy would reward answering the majority class",
            )
    return PrimaryChoice(default, f"the {task_type} default")


def metric_names(task_type: str) -> list[str]:
    """The metrics a task type defines, primary first."""
    primary = primary_metric(task_type)
    return [primary, *(d.name for d in definitions(task_type) if d.name != primary)]


def point_metric(task_type: str, metric: str, records: Sequence[Record], labels: Sequence[str] = ()) -> float:
    """One metric's value over the records, without an interval (a search judges many epochs with it)."""
    definition = next(d for d in definitions(task_type) if d.name == metric)
    predictions = [r.score.detail.get("prediction") for r in records]
    parts = [score_parts(r) for r in records]
    columns = build_columns([r.example.target for r in records], predictions, parts, labels)
    if not all(name in columns for name in definition.needs):
        raise ValueError(f"metric '{metric}' needs {', '.join(definition.needs)}, which the scorer does not give")
    return float(definition.statistic(columns, np.arange(len(records))[None, :])[0])


def available(task_type: str, columns: Columns) -> list[MetricDefinition]:
    """The task type's metrics whose columns are present (and complete)."""
    return [d for d in definitions(task_type) if all(n in columns and not np.isnan(columns[n]).any() for n in d.needs)]


def estimates(
    task_type: str, columns: Columns, n: int, measurement: Measurement = DEFAULT_MEASUREMENT
) -> dict[str, Estimate]:
    """Every available metric with its 95% percentile-bootstrap interval (the same resamples for all)."""
    return {d.name: bootstrap(_bound(d.statistic, columns), n, measurement) for d in available(task_type, columns)}


def _bound(statistic: Statistic, columns: Columns) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic over these columns, as a function of the resampled indices alone."""
    return lambda idx: statistic(columns, idx)


def paired_metric(
    task_type: str,
    metric: str,
    columns_a: Columns,
    columns_b: Columns,
    n: int,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> PairedDifference:
    """metric(A) - metric(B) on the same examples, with its paired interval and p-value."""
    definition = next((d for d in definitions(task_type) if d.name == metric), None)
    if definition is None:
        raise ValueError(f"no metric '{metric}' for task type '{task_type}'")
    return paired_bootstrap(
        lambda idx: definition.statistic(columns_a, idx),
        lambda idx: definition.statistic(columns_b, idx),
        n,
        measurement,
    )
