"""The prompt_tuning rung: learned virtual token embeddings in front of the prompt (peft prompt tuning)."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_prompt_tuning
from tuning.registry import TuningMethod, register_method
from tuning.tuned import TunedPredictor, VirtualTokenOptions


class PromptTuningConfig(VirtualTokenOptions):
    """Prompt-tuning options: num_virtual_tokens (default 20), learning rate default 3e-2."""


# peft's examples: virtual tokens need far larger steps than weights
register_method(
    TuningMethod(
        "prompt_tuning",
        wrap_prompt_tuning,
        learning_rate=3e-2,
        learning_rate_range=(3e-3, 1e-1),
        starts_from_instruction=True,
    )
)


@rung("prompt_tuning", config=PromptTuningConfig, sweep=("num_virtual_tokens",), step=3)
def build_prompt_tuning(config: PromptTuningConfig, context: RungContext) -> Predictor:
    """Build the prompt_tuning predictor (virtual tokens start from the instruction's embeddings)."""
    return TunedPredictor("prompt_tuning", config, context)
