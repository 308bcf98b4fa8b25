"""The prefix_tuning rung: learned keys and values in front of every layer (peft prefix tuning)."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_prefix_tuning
from tuning.registry import TuningMethod, register_method
from tuning.tuned import TunedPredictor, VirtualTokenOptions


class PrefixTuningConfig(VirtualTokenOptions):
    """Prefix-tuning options: num_virtual_tokens (default 20), learning rate default 1e-2."""


register_method(TuningMethod("prefix_tuning", wrap_prefix_tuning, learning_rate=1e-2, learning_rate_range=(1e-3, 3e-2)))


@rung("prefix_tuning", config=PrefixTuningConfig, sweep=("num_virtual_tokens",), step=3)
def build_prefix_tuning(config: PrefixTuningConfig, context: RungContext) -> Predictor:
    """Build the prefix_tuning predictor."""
    return TunedPredictor("prefix_tuning", config, context)
