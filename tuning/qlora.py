"""The qlora rung: a low-rank adapter over a 4-bit nf4 base (bitsandbytes, double quantisation) trained on the task."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_lora
from tuning.registry import TuningMethod, register_method
from tuning.tuned import LoraOptions, TunedPredictor


class QloraConfig(LoraOptions):
    """QLoRA options: LoRA's, over a base quantized to 4-bit nf4."""


register_method(TuningMethod("qlora", wrap_lora, learning_rate=1e-3, base="quantized", family="lora"))


@rung("qlora", config=QloraConfig, sweep=("r",), step=3)
def build_qlora(config: QloraConfig, context: RungContext) -> Predictor:
    """Build the qlora predictor (it trains on first use, or loads the stored adapter)."""
    return TunedPredictor("qlora", config, context)
