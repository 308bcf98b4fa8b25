"""The lora rung: a low-rank adapter trained on the task."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_lora
from tuning.registry import TuningMethod, register_method
from tuning.tuned import LoraOptions, TunedPredictor


class LoraConfig(LoraOptions):
    """LoRA options (see LoraOptions)."""


register_method(TuningMethod("lora", wrap_lora, learning_rate=2e-4, learning_rate_range=(1e-4, 3e-3), mergeable=True))


@rung("lora", config=LoraConfig, sweep=("r",), step=3)
def build_lora(config: LoraConfig, context: RungContext) -> Predictor:
    """Build the lora predictor (it trains on first use, or loads the stored adapter)."""
    return TunedPredictor("lora", config, context)
