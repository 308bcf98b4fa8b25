"""The KV cache of a prefix that many prompts share (the instruction and fixed demonstrations).

The prefix is run once; each batch then gets its own cache holding expanded views of those keys
and values. The model's cache update concatenates into new tensors, so the shared state is never
written to, and the next batch starts from the same prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class PrefixCache:
    """Keeps the KV state of the most recent prefix (one rung's prompts share one prefix)."""

    def __init__(self, model: Any):
        self.model = model
        self._key: tuple[int, ...] | None = None
        self._layers: list[tuple[torch.Tensor, torch.Tensor]] = []

    def layers(self, prefix: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(keys, values) per layer for this prefix, computed on first use."""
        key = tuple(prefix)
        if key != self._key:
            device = next(self.model.parameters()).device
            ids = torch.tensor([list(key)], device=device)
            output = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            self._layers = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
            self._key = key
        return self._layers

    def for_batch(self, prefix: Sequence[int], batch: int) -> Any:
        """A fresh cache for `batch` rows that all continue this prefix."""
        from transformers import DynamicCache

        cache = DynamicCache()
        for index, (keys, values) in enumerate(self.layers(prefix)):
            cache.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1), index)
        return cache
