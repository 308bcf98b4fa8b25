"""The ia3 rung: learned rescaling vectors on attention and feed-forward activations (peft IA3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tuning.options import TuneConfig
from tuning.registry import TuningMethod
from tuning.tuned import tuned_rung


class Ia3Config(TuneConfig):
    """IA3 options (learning rate default 3e-3)."""


def wrap_ia3(model: Any, options: Ia3Config, init_tokens: Sequence[int]) -> Any:
    """Learned rescaling vectors on attention and feed-forward activations."""
    from peft import IA3Config, get_peft_model

    return get_peft_model(model, IA3Config(task_type="CAUSAL_LM"))


tuned_rung(TuningMethod("ia3", wrap_ia3, learning_rate=3e-3), config=Ia3Config, step=3)
