"""The dora rung: LoRA whose weight updates are split into a magnitude and a direction (DoRA, peft's use_dora).

Everything a rung needs is declared in one `tuned_rung` call: its name, its options, its place on the
ladder and its tuning method (how to wrap the base, its learning rates, that its adapter merges). Ladder
then trains it, searches its learning rate on validation, probes its forgetting, prices it in `--plan` and
exports it with `advisor train --rung dora [--merge]`, as it does for lora.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from advisor.plugin_api import LoraOptions, TuningMethod, tuned_rung


class DoraConfig(LoraOptions):
    """DoRA options: LoRA's (r, alpha, dropout, target_modules, epochs, search, ...)."""


def wrap_dora(model: Any, options: DoraConfig, init_tokens: Sequence[int]) -> Any:
    """A DoRA adapter on the target modules."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=options.r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        use_dora=True,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


tuned_rung(
    TuningMethod("dora", wrap_dora, learning_rate=2e-4, learning_rate_range=(1e-4, 3e-3), mergeable=True),
    config=DoraConfig,
    sweep=("r",),
    step=3,
)
