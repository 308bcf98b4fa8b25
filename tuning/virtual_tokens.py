"""Prompt tuning and prefix tuning: learned virtual tokens in front of every prompt.

peft's own forward for these methods drops explicit position ids (prompt tuning) and prepends the
virtual tokens in front of any left padding, so the distance between the virtual tokens and the
text would depend on how much a row was padded. Here the virtual tokens always take positions
0..n-1 and the text n, n+1, ...: in training (`training_logits`) and in evaluation, where the
virtual tokens become a KV prefix (`soft_prefix`) that the engine puts in front of every request
exactly like a shared prompt prefix.
"""

from __future__ import annotations

from typing import Any

import torch

KeyValues = list[tuple[torch.Tensor, torch.Tensor]]


def virtual_token_type(model: Any) -> str | None:
    """'PROMPT_TUNING' or 'PREFIX_TUNING' for a peft prompt-learning model, else None."""
    from peft import PeftModel

    if not isinstance(model, PeftModel) or not model.active_peft_config.is_prompt_learning:
        return None
    return str(model.active_peft_config.peft_type.value)


def training_logits(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    logits_to_keep: torch.Tensor,
) -> torch.Tensor:
    """Logits at `logits_to_keep` (indices into the text), with the model's virtual tokens in front if it has any."""
    kind = virtual_token_type(model)
    if kind is None:
        return model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=logits_to_keep,
            use_cache=False,
        ).logits
    if kind == "PREFIX_TUNING":
        # what peft's own forward does (the virtual KV in front, the mask widened, positions offset), but
        # through the current `cache=` argument: peft 0.21 still passes the deprecated `past_key_values=`
        batch, count = input_ids.shape[0], model.active_peft_config.num_virtual_tokens
        return model.base_model(
            input_ids=input_ids,
            attention_mask=torch.cat([attention_mask.new_ones((batch, count)), attention_mask], dim=1),
            position_ids=position_ids + count,
            cache=model.get_prompt(batch_size=batch, max_cache_len=input_ids.shape[1] + count),
            logits_to_keep=logits_to_keep,
            use_cache=True,
        ).logits
    if kind != "PROMPT_TUNING":
        raise ValueError(f"unsupported prompt-learning method {kind}")
    batch = input_ids.shape[0]
    prompts = model.get_prompt(batch_size=batch)
    count = prompts.shape[1]
    embeddings = model.word_embeddings(input_ids)
    virtual_positions = torch.arange(count, device=input_ids.device).expand(batch, count)
    return model.base_model(
        inputs_embeds=torch.cat([prompts.to(embeddings.dtype), embeddings], dim=1),
        attention_mask=torch.cat([attention_mask.new_ones((batch, count)), attention_mask], dim=1),
        position_ids=torch.cat([virtual_positions, position_ids + count], dim=1),
        logits_to_keep=logits_to_keep + count,
        use_cache=False,
    ).logits


@torch.no_grad()
def soft_prefix(model: Any) -> KeyValues:
    """The virtual tokens as (keys, values) per layer, batch 1: the KV state every request continues from."""
    kind = virtual_token_type(model)
    if kind == "PREFIX_TUNING":
        cache: Any = model.get_prompt(batch_size=1)  # peft 0.21 returns a transformers Cache
        return [(layer.keys.detach(), layer.values.detach()) for layer in cache.layers]
    if kind == "PROMPT_TUNING":
        prompts = model.get_prompt(batch_size=1)
        base = model.base_model
        dtype = next(base.parameters()).dtype
        positions = torch.arange(prompts.shape[1], device=prompts.device)[None]
        output = base(inputs_embeds=prompts.to(dtype), position_ids=positions, use_cache=True, logits_to_keep=1)
        return [(layer.keys, layer.values) for layer in output.cache.layers]
    raise ValueError("soft_prefix needs a prompt-tuning or prefix-tuning model")
