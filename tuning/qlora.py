"""The qlora rung: a low-rank adapter over a 4-bit nf4 base (bitsandbytes, double quantisation) trained on the task."""

from __future__ import annotations

from tuning.methods import add_lora, wrap_lora
from tuning.options import LoraOptions
from tuning.registry import TuningMethod
from tuning.tuned import tuned_rung


class QloraConfig(LoraOptions):
    """QLoRA options: LoRA's, over a base quantized to 4-bit nf4."""


# lora's wrap (tuning/methods.py, shared) over the method's own 4-bit load of the base
tuned_rung(
    TuningMethod("qlora", wrap_lora, learning_rate=1e-3, base="quantized", family="lora", add_adapter=add_lora),
    config=QloraConfig,
    sweep=("r",),
    step=3,
)
