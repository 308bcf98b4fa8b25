"""The task-type registry: how a type's answers are scored, which metrics it reports, what its data looks like.

A task type registers exactly as a plug-in would, through the `ladder.task_types` entry point group;
the built-in ones are the modules of harness/task_kinds/. Nothing elsewhere branches on a type's name:
callers ask the registered TaskType (is it labelled? which metric is primary?).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.metric_types import MetricDefinition, Scorer
from harness.registry import Registry, caller_module


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


_TYPES: Registry[TaskType] = Registry("task type", "ladder.task_types")


def register_task_type(task_type: TaskType) -> TaskType:
    """Add a task type to the registry (its module does this at import); a taken name is refused."""
    return _TYPES.add(task_type.name, task_type, caller_module())


def task_type_names() -> list[str]:
    """Every registered task type, sorted."""
    return _TYPES.names()


def get_task_type(name: str) -> TaskType:
    """The registered task type of this name; an unknown name lists the close matches."""
    return _TYPES.get(name)
