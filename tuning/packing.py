"""Padding-free micro-batches: a micro-batch's rows concatenated into one sequence of batch size 1.

Each row keeps the positions it would have alone (continuing after the shared prefix), and a
block-diagonal causal mask lets each token see the shared prefix and its own row's earlier tokens,
never another row's. The mask is 4D, so transformers 5 passes it to the attention as it is
(`masking_utils._preprocess_mask_arguments` returns a 4D mask unchanged): boolean (True = attend)
for SDPA, additive (0 or the dtype's minimum) for eager attention, which adds it to the scores.

Flash attention's varlen path is not wired: with `attn_implementation == "flash_attention_2"` (or
any other kernel that ignores a 4D mask) packing is not supported and batches stay padded. Models
with virtual tokens (prompt and prefix tuning) also stay padded: their virtual tokens sit in front
of every row through their own forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from tuning.virtual_tokens import virtual_token_type

MASKED_KERNELS = ("sdpa", "eager")  # attention kernels that honour an explicit 4D mask


class Row(Protocol):
    """A training row as tuning.batch_loss.TrainRow has it: its tokens, the last `completion` of them the answer."""

    @property
    def tokens(self) -> tuple[int, ...]: ...

    @property
    def completion(self) -> int: ...


@dataclass(frozen=True)
class PackedRows:
    """One micro-batch's rows as one sequence, and where its loss is."""

    input_ids: torch.Tensor  # (1, T): the rows' tokens one after another, T their total length
    position_ids: torch.Tensor  # (1, T): each row's own positions, starting at the prefix length
    rows: torch.Tensor  # (T,): the row each token belongs to
    keep: torch.Tensor  # (C,): the positions whose logits predict a completion token
    targets: torch.Tensor  # (C,): those completion tokens, row after row
    target_rows: torch.Tensor  # (C,): the row each target belongs to


def packing_supported(model: Any) -> bool:
    """Whether `model` can run packed rows: no virtual tokens and an attention kernel that honours a 4D mask."""
    if virtual_token_type(model) is not None:
        return False
    return attention_kernel(model) in MASKED_KERNELS


def attention_kernel(model: Any) -> str:
    """The model's attention implementation ('sdpa', 'eager', 'flash_attention_2', ...)."""
    return str(model.config._attn_implementation or "eager")


def pack_rows(rows: Sequence[Row], start: int = 0) -> PackedRows:
    """Concatenate `rows`; each row's positions run from `start` (the shared prefix's length)."""
    tokens: list[int] = []
    positions: list[int] = []
    owners: list[int] = []
    keep: list[int] = []
    targets: list[int] = []
    target_rows: list[int] = []
    for index, row in enumerate(rows):
        offset, length = len(tokens), len(row.tokens)
        tokens.extend(row.tokens)
        positions.extend(range(start, start + length))
        owners.extend([index] * length)
        first = length - row.completion  # the first completion token, predicted by the position before it
        keep.extend(range(offset + first - 1, offset + length - 1))
        targets.extend(row.tokens[first:])
        target_rows.extend([index] * row.completion)
    return PackedRows(
        torch.tensor([tokens], dtype=torch.long),
        torch.tensor([positions], dtype=torch.long),
        torch.tensor(owners, dtype=torch.long),
        torch.tensor(keep, dtype=torch.long),
        torch.tensor(targets, dtype=torch.long),
        torch.tensor(target_rows, dtype=torch.long),
    )


def block_causal_mask(rows: torch.Tensor, prefix_length: int = 0) -> torch.Tensor:
    """(1, 1, T, prefix + T) booleans, True where a token may attend: the prefix, and its own row up to itself."""
    length = rows.shape[0]
    index = torch.arange(length, device=rows.device)
    own = (rows[:, None] == rows[None, :]) & (index[None, :] <= index[:, None])
    prefix = torch.ones((length, prefix_length), dtype=torch.bool, device=rows.device)
    return torch.cat([prefix, own], dim=-1)[None, None]


def attention_mask_for(model: Any, allowed: torch.Tensor) -> torch.Tensor:
    """The boolean mask in the form the model's attention kernel takes (additive for eager)."""
    if attention_kernel(model) == "sdpa":
        return allowed
    dtype = model.dtype
    if not dtype.is_floating_point:
        dtype = torch.float32
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)
