"""The task-type registry: how a type's answers are scored, which metrics it reports, what its data looks like.

A task type registers exactly as a plug-in would, through the `ladder.task_types` entry point group;
the built-in ones are the modules of harness/task_kinds/. Nothing elsewhere branches on a type's name:
callers ask the registered TaskType (is it labelled? which metric is primary?).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from harness.errors import InputError, did_you_mean

if TYPE_CHECKING:
    from harness.metrics.scoring import Scorer
    from harness.metrics.task_metrics import MetricDefinition


@dataclass(frozen=True)
class TaskType:
    """One kind of task."""

    name: str
    scorer: Callable[[Sequence[str]], Scorer]  # given the task's labels (empty when it has none)
    metrics: tuple[MetricDefinition, ...]
    primary_metric: str
    # answers are one of the task's labels: scored by label likelihood, stratified splits, label checks,
    # the majority-class baseline, confusion matrices, macro-F1 when the labels are imbalanced
    labelled: bool = False
    multi_answer: bool = False  # a target may be a list of acceptable answers
    json_target: bool = False  # the target is a JSON object (or its text)
    output_similarity: bool = False  # free text also judged by embedding similarity to the target


_TYPES: dict[str, TaskType] = {}
_LOADED = False


def register_task_type(task_type: TaskType) -> TaskType:
    """Add a task type to the registry (its module does this at import)."""
    _TYPES[task_type.name] = task_type
    return task_type


def _load() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for point in entry_points(group="ladder.task_types"):
            point.load()


def task_type_names() -> list[str]:
    """Every registered task type, sorted."""
    _load()
    return sorted(_TYPES)


def get_task_type(name: str) -> TaskType:
    """The registered task type of this name; an unknown name lists the close matches."""
    _load()
    if name in _TYPES:
        return _TYPES[name]
    hint = did_you_mean(name, _TYPES)
    raise InputError(f"task type '{name}' is not supported{hint} (supported: {', '.join(sorted(_TYPES))})")
