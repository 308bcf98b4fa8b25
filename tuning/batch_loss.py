"""One training batch's loss: completion tokens only, logits only where the loss is, a shared prefix run once.

Rows are left-padded so every row's completion ends at the last position: one 1D `logits_to_keep`
(the last A positions, A the longest completion in the batch) then covers exactly the positions
the loss needs, on every transformers 5 release.

Every row of a task starts with the same tokens (the chat template's system turn with the
instruction). That prefix is run once per batch, at batch size 1, and its keys and values are
expanded (views, not copies) in front of every row, exactly as the engine does when it answers.
Gradients flow through the expansion, so the prefix's LoRA weights train as if each row had carried
it. Models with virtual tokens (prompt and prefix tuning) put those in front of everything, so for
them the prefix is simply part of every row.

With `packed=True` a batch runs padding-free instead (tuning/packing.py): its rows concatenated into
one sequence, each with its own positions and a block-diagonal causal mask over the shared prefix
and its own tokens. Models that cannot take that mask (virtual tokens, flash attention) stay padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.inference.prefix_cache import expanded_cache
from tuning.packing import attention_mask_for, block_causal_mask, pack_rows, packing_supported
from tuning.virtual_tokens import training_logits, virtual_token_type


@dataclass(frozen=True)
class TrainRow:
    """One training row: prompt tokens (after the shared prefix) followed by the completion."""

    tokens: tuple[int, ...]
    completion: int  # how many of the last tokens are the completion


@dataclass(frozen=True)
class BatchLoss:
    """Mean cross-entropy over completion tokens, with the token counts that throughput is measured in."""

    loss: torch.Tensor
    useful_tokens: int  # every real (non-pad) token the batch stands for, the shared prefix once per row
    computed_tokens: int  # the real tokens actually run through the model
    completion_tokens: int
    padded_tokens: int = 0  # padding positions run beside them


def batch_loss(
    rows: Sequence[TrainRow],
    model: Any,
    pad_id: int,
    prefix: Sequence[int] = (),
    packed: bool = False,
    copies: int = 1,
    share_prefix: bool = True,
) -> BatchLoss:
    """The loss of one batch of rows, each continuing `prefix`; padding-free with `packed` where the model allows.
    Without `share_prefix` every row carries the prefix (one forward: what a model sharded by FSDP needs).

    With `copies` > 1 the batch runs that many times side by side, as consecutive blocks of rows (the
    model routes each block to its own adapter: tuning/trial_batch.py); `loss` then holds each copy's
    mean, and the token counts are one copy's.
    """
    if packed and packing_supported(model):
        logits, targets, useful, computed = packed_completion_logits(rows, model, prefix, copies)
        padded = 0
    else:
        logits, targets, useful, computed = completion_logits(rows, model, pad_id, prefix, copies, share_prefix)
        padded = len(rows) * max(len(r.tokens) for r in rows) - sum(len(r.tokens) for r in rows)
    completion = int((targets != -100).sum()) // copies
    if copies == 1:
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
        )
        return BatchLoss(loss, useful, computed, completion, padded)
    per_token = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
    )
    losses = per_token.reshape(copies, -1).sum(-1) / completion
    return BatchLoss(losses, useful, computed, completion, padded)


def packed_completion_logits(
    rows: Sequence[TrainRow], model: Any, prefix: Sequence[int] = (), copies: int = 1
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """`completion_logits` for the rows packed into one sequence (`copies` of it): (copies, C) targets, C the
    batch's completion tokens.

    Only for models that `packing_supported` (no virtual tokens, so a prefix is always shared).
    """
    device = next(model.parameters()).device
    length = len(prefix)
    pack = pack_rows(rows, start=length)
    allowed = block_causal_mask(pack.rows.to(device), length)
    real = int(pack.input_ids.shape[1])
    logits = model(
        input_ids=pack.input_ids.to(device).expand(copies, -1),
        attention_mask=attention_mask_for(model, allowed.expand(copies, *allowed.shape[1:])),
        position_ids=pack.position_ids.to(device).expand(copies, -1),
        cache=expanded_cache(prefix_keys_values(model, prefix, device, copies), copies) if length else None,
        logits_to_keep=pack.keep.to(device),
        use_cache=bool(length),
    ).logits
    useful, computed = real + len(rows) * length, real + length
    return logits, pack.targets[None].expand(copies, -1).to(device), useful, computed


def completion_logprobs(
    rows: Sequence[TrainRow], model: Any, pad_id: int, prefix: Sequence[int] = (), mean: bool = False
) -> torch.Tensor:
    """Each row's completion log-probability: the sum over its completion tokens (their mean with `mean`)."""
    logits, targets, _, _ = completion_logits(rows, model, pad_id, prefix)
    mask = targets != -100
    picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    totals = (picked * mask).sum(-1)
    return totals / mask.sum(-1) if mean else totals


def completion_logits(
    rows: Sequence[TrainRow],
    model: Any,
    pad_id: int,
    prefix: Sequence[int] = (),
    copies: int = 1,
    share_prefix: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(logits at the completion positions, their targets with -100 for padding, useful and computed tokens);
    the rows run `copies` times as consecutive blocks, the token counts one block's."""
    device = next(model.parameters()).device
    shared = bool(prefix) and share_prefix and virtual_token_type(model) is None
    if prefix and not shared:
        rows = [TrainRow((*prefix, *row.tokens), row.completion) for row in rows]
    one = len(rows)
    rows = list(rows) * copies
    width = max(len(r.tokens) for r in rows)
    batch = len(rows)
    longest = max(r.completion for r in rows)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    targets = torch.full((batch, longest), -100, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, width - len(row.tokens) :] = torch.tensor(row.tokens)
        attention[b, width - len(row.tokens) :] = 1
        targets[b, longest - row.completion :] = torch.tensor(row.tokens[-row.completion :])
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    keep = torch.arange(width - longest - 1, width - 1)  # each position predicts the next token
    real = int(attention.sum()) // copies
    if shared:
        logits = _logits_after_prefix(model, prefix, input_ids, attention, positions, keep, device, copies)
        useful, computed = real + one * len(prefix), real + len(prefix)
    else:
        ids, mask = input_ids.to(device), attention.to(device)
        logits = training_logits(model, ids, mask, positions.to(device), keep.to(device))
        useful = computed = real
    return logits, targets.to(device), useful, computed


def _logits_after_prefix(
    model: Any,
    prefix: Sequence[int],
    input_ids: torch.Tensor,
    attention: torch.Tensor,
    positions: torch.Tensor,
    keep: torch.Tensor,
    device: Any,
    copies: int,
) -> torch.Tensor:
    length = len(prefix)
    layers = prefix_keys_values(model, prefix, device, copies)
    batch = input_ids.shape[0]
    mask = torch.cat([torch.ones((batch, length), dtype=attention.dtype), attention], dim=-1)
    return model(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=(positions + length).to(device),
        cache=expanded_cache(layers, batch),
        logits_to_keep=keep.to(device),
        use_cache=True,
    ).logits


def prefix_keys_values(
    model: Any, prefix: Sequence[int], device: Any, copies: int = 1
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every layer's keys and values for the shared prefix, run once per copy (with gradients: the adapter
    shapes them)."""
    length = len(prefix)
    head = model(
        input_ids=torch.tensor([list(prefix)] * copies, device=device),
        attention_mask=torch.ones((copies, length), dtype=torch.long, device=device),
        position_ids=torch.arange(length, device=device)[None].expand(copies, -1),
        use_cache=True,
        logits_to_keep=1,
    )
    return [(layer.keys, layer.values) for layer in head.cache.layers]
