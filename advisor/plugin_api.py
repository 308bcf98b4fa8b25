"""What a plug-in imports: everything docs/plugins.md uses, from one module.

A rung, a tuned rung with its tuning method, a task type or a tracking backend registers through these
names, exactly as Ladder's own built-ins do. Each name is imported from its home module on first use, so
a task type or a tracking backend does not pay for the model libraries a tuned rung needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from advisor.tracking.record import TrackedRun
    from advisor.tracking.sinks import Sink, TrackingTarget, TrackingUnavailable, register_sink
    from harness.errors import InputError
    from harness.metric_types import MetricDefinition, Scorer
    from harness.metrics.task_metrics import mean_of
    from harness.rungs import (
        Predictor,
        PromptSizes,
        RequestShape,
        RungConfig,
        RungContext,
        TunedModel,
        answer_tokens,
        rung,
    )
    from harness.task_types import TaskType, register_task_type
    from harness.types import Example, Output, Score
    from tuning.options import LoraOptions, TuneConfig, VirtualTokenOptions
    from tuning.registry import TuningMethod
    from tuning.tuned import TunedPredictor, tuned_rung

__all__ = [
    "Example",
    "InputError",
    "LoraOptions",
    "MetricDefinition",
    "Output",
    "Predictor",
    "PromptSizes",
    "RequestShape",
    "RungConfig",
    "RungContext",
    "Score",
    "Scorer",
    "Sink",
    "TaskType",
    "TrackedRun",
    "TrackingTarget",
    "TrackingUnavailable",
    "TuneConfig",
    "TunedModel",
    "TunedPredictor",
    "TuningMethod",
    "VirtualTokenOptions",
    "answer_tokens",
    "mean_of",
    "register_sink",
    "register_task_type",
    "rung",
    "tuned_rung",
]

_HOMES = {
    "advisor.tracking.record": ("TrackedRun",),
    "advisor.tracking.sinks": ("Sink", "TrackingTarget", "TrackingUnavailable", "register_sink"),
    "harness.errors": ("InputError",),
    "harness.metric_types": ("MetricDefinition", "Scorer"),
    "harness.metrics.task_metrics": ("mean_of",),
    "harness.rungs": (
        "Predictor",
        "PromptSizes",
        "RequestShape",
        "RungConfig",
        "RungContext",
        "TunedModel",
        "answer_tokens",
        "rung",
    ),
    "harness.task_types": ("TaskType", "register_task_type"),
    "harness.types": ("Example", "Output", "Score"),
    "tuning.options": ("LoraOptions", "TuneConfig", "VirtualTokenOptions"),
    "tuning.registry": ("TuningMethod",),
    "tuning.tuned": ("TunedPredictor", "tuned_rung"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a public name from its home module on first use."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
