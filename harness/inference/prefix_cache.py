"""The KV cache of a prefix that many prompts share (the instruction and fixed demonstrations).

The prefix is run once; each batch then gets its own cache holding expanded views of those keys
and values. The model's cache update concatenates into new tensors, so the shared state is never
written to, and the next batch starts from the same prefix.

A model may also bring a soft prefix: learned virtual tokens given directly as keys and values
(prompt or prefix tuning). It sits in front of everything, at positions 0..n-1, and a token
prefix is then computed on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

KeyValues = list[tuple[torch.Tensor, torch.Tensor]]


class PrefixCache:
    """Keeps the KV state of the most recent prefix (one rung's prompts share one prefix)."""

    def __init__(self, model: Any, soft_prefix: KeyValues | None = None):
        self.model = model
        self.soft = soft_prefix or []
        self.soft_length = int(self.soft[0][0].shape[-2]) if self.soft else 0
        self._key: tuple[int, ...] | None = None
        self._layers: KeyValues = []

    def length(self, prefix: Sequence[int]) -> int:
        """Positions the cache holds in front of every row: soft prefix plus token prefix."""
        return self.soft_length + len(prefix)

    def layers(self, prefix: Sequence[int]) -> KeyValues:
        """(keys, values) per layer for the soft prefix plus this token prefix, computed on first use."""
        key = tuple(prefix)
        if not key:
            return self.soft
        if key != self._key:
            device = next(self.model.parameters()).device
            ids = torch.tensor([list(key)], device=device)
            start = self.soft_length
            output = self.model(
                input_ids=ids,
                attention_mask=torch.ones((1, start + len(key)), dtype=torch.long, device=device),
                position_ids=torch.arange(start, start + len(key), device=device)[None],
                cache=expanded_cache(self.soft, 1) if self.soft else None,
                use_cache=True,
                logits_to_keep=1,
            )
            self._layers = [(layer.keys, layer.values) for layer in output.cache.layers]
            self._key = key
        return self._layers

    def for_batch(self, prefix: Sequence[int], batch: int) -> Any:
        """A fresh cache for `batch` rows that all continue this prefix."""
        return expanded_cache(self.layers(prefix), batch)


def expanded_cache(layers: KeyValues, batch: int) -> Any:
    """A fresh cache whose every row continues the same (batch-1) keys and values, as views, not copies.

    Keys and values of c > 1 rows (one prefix per adapter, when several adapters share a batch) are
    continued by c equal blocks of rows, in order."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        copies = int(keys.shape[0])
        if copies == 1:
            cache.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1), index)
        else:
            block = batch // copies
            cache.update(keys.repeat_interleave(block, dim=0), values.repeat_interleave(block, dim=0), index)
    return cache
