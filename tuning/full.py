"""The full rung: every weight of the model fine-tuned on the task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tuning.options import TuneConfig
from tuning.registry import TuningMethod
from tuning.tuned import tuned_rung


class FullConfig(TuneConfig):
    """Full fine-tuning options (learning rate default 1e-4 for small models)."""


def wrap_full(model: Any, options: FullConfig, init_tokens: Sequence[int]) -> Any:
    """Every weight trains."""
    for parameter in model.parameters():
        parameter.requires_grad = True
    return model


# about a tenth of LoRA's best rate at the same size
tuned_rung(TuningMethod("full", wrap_full, learning_rate=1e-4, artifact="model"), config=FullConfig, step=4)
