"""The lora rung: a low-rank adapter trained on the task."""

from __future__ import annotations

from tuning.methods import add_lora, wrap_lora
from tuning.options import LoraOptions
from tuning.registry import TuningMethod
from tuning.tuned import tuned_rung


class LoraConfig(LoraOptions):
    """LoRA options (see LoraOptions)."""


# LoRA's best rate is about 10x full fine-tuning's: ~1e-3 up to a few billion parameters ("LoRA Without Regret")
tuned_rung(
    TuningMethod("lora", wrap_lora, learning_rate=1e-3, mergeable=True, family="lora", add_adapter=add_lora),
    config=LoraConfig,
    sweep=("r",),
    step=3,
)
