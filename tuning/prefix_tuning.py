"""The prefix_tuning rung: learned keys and values in front of every layer (peft prefix tuning)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tuning.options import VirtualTokenOptions
from tuning.registry import TuningMethod
from tuning.tuned import tuned_rung


class PrefixTuningConfig(VirtualTokenOptions):
    """Prefix-tuning options: num_virtual_tokens (default 20), learning rate default 1e-2."""


def wrap_prefix_tuning(model: Any, options: VirtualTokenOptions, init_tokens: Sequence[int]) -> Any:
    """Learned keys and values in front of every layer."""
    from peft import PrefixTuningConfig, get_peft_model

    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=options.num_virtual_tokens)
    return get_peft_model(model, config)


tuned_rung(
    TuningMethod(
        "prefix_tuning", wrap_prefix_tuning, learning_rate=1e-2, learning_rate_range=(1e-3, 3e-2), shards=False
    ),
    config=PrefixTuningConfig,
    sweep=("num_virtual_tokens",),
    step=3,
)
