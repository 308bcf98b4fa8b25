"""The prompt_tuning rung: learned virtual token embeddings in front of the prompt (peft prompt tuning)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tuning.options import VirtualTokenOptions
from tuning.registry import TuningMethod
from tuning.tuned import tuned_rung


class PromptTuningConfig(VirtualTokenOptions):
    """Prompt-tuning options: num_virtual_tokens (default 20), learning rate default 3e-2."""


def wrap_prompt_tuning(model: Any, options: VirtualTokenOptions, init_tokens: Sequence[int]) -> Any:
    """Learned virtual token embeddings in front of the prompt, started from `init_tokens` when given."""
    from peft import PromptTuningConfig, get_peft_model

    count = options.num_virtual_tokens
    wrapped = get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=count))
    if init_tokens:
        _start_from_tokens(wrapped, init_tokens, count)
    return wrapped


def _start_from_tokens(model: Any, tokens: Sequence[int], count: int) -> None:
    """Set the virtual tokens to the embeddings of `tokens`, repeated or cut to `count`."""
    ids = torch.tensor([tokens[i % len(tokens)] for i in range(count)])
    with torch.no_grad():
        embedding = model.prompt_encoder[model.active_adapter].embedding
        embedding.weight.copy_(model.word_embeddings(ids.to(embedding.weight.device)))


# peft's examples: virtual tokens need far larger steps than weights; they start from the instruction's embeddings
tuned_rung(
    TuningMethod(
        "prompt_tuning",
        wrap_prompt_tuning,
        learning_rate=3e-2,
        learning_rate_range=(3e-3, 1e-1),
        starts_from_instruction=True,
        shards=False,
    ),
    config=PromptTuningConfig,
    sweep=("num_virtual_tokens",),
    step=3,
)
