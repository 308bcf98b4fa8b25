"""The lora rung: a low-rank adapter trained on the task."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_lora
from tuning.registry import TuningMethod, register_method
from tuning.tuned import LoraOptions, TunedPredictor


class LoraConfig(LoraOptions):
    """LoRA options (see LoraOptions)."""


# LoRA's best rate is about 10x full fine-tuning's: ~1e-3 up to a few billion parameters ("LoRA Without Regret")
register_method(TuningMethod("lora", wrap_lora, learning_rate=1e-3, mergeable=True, family="lora"))


@rung("lora", config=LoraConfig, sweep=("r",), step=3)
def build_lora(config: LoraConfig, context: RungContext) -> Predictor:
    """Build the lora predictor (it trains on first use, or loads the stored adapter)."""
    return TunedPredictor("lora", config, context)
