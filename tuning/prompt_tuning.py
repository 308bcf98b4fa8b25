"""The prompt_tuning rung: learned virtual token embeddings in front of the prompt (peft prompt tuning)."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.tuned import TunedPredictor, VirtualTokenOptions


class PromptTuningConfig(VirtualTokenOptions):
    """Prompt-tuning options: num_virtual_tokens (default 20), learning rate default 3e-2."""


@rung("prompt_tuning", config=PromptTuningConfig, sweep=("num_virtual_tokens",), step=3)
def build_prompt_tuning(config: PromptTuningConfig, context: RungContext) -> Predictor:
    """Build the prompt_tuning predictor (virtual tokens start from the instruction's embeddings)."""
    return TunedPredictor("prompt_tuning", config, context)
