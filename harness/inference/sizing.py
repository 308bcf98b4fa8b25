"""How many tokens one scoring or generation batch may hold on this device.

The CPU keeps the task's `evaluation.batch_tokens` (4,096 by default). On CUDA a default of that size leaves
the card idle (scoring the 135M model: 27,800 tokens/s at 4,096-token batches, 50,500 at 32,768 on an H200),
so when the task file does not set it the engine sizes it to the memory free once its model is loaded: a
quarter of it (the rest for the allocator's fragmentation and whatever else shares the card) divided by
what a token costs, rounded down to a power of two, never below the CPU default nor above `CUDA_MAX`.
"""

from __future__ import annotations

from typing import Any

CUDA_SHARE = 0.25  # of the free memory, for one batch's activations, keys and values
CUDA_MAX = 65_536  # past this larger batches gain nothing measurable and a batch's latency grows


def device_batch_tokens(default: int, device_type: str, free_bytes: int, bytes_per_token: int) -> int:
    """The batch token budget: `default` off CUDA; on CUDA sized to the free memory (see the module)."""
    if device_type != "cuda" or bytes_per_token <= 0:
        return default
    fits = int(free_bytes * CUDA_SHARE) // bytes_per_token
    size = default
    while size * 2 <= min(fits, CUDA_MAX):
        size *= 2
    return size


def token_bytes(config: Any, dtype_bytes: int = 2) -> int:
    """What one token of a batch costs a causal LM (an estimate from its config): its keys and values in every
    layer, a few hidden-size activations and the MLP's intermediate ones live at once, and a float32 row of
    logits (generation and scoring keep logits for some positions only, so this bounds them)."""
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 0) or 1)
    kv_heads = int(getattr(config, "num_key_value_heads", 0) or heads)
    head_dim = int(getattr(config, "head_dim", 0) or hidden // max(heads, 1))
    intermediate = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    keys_values = 2 * layers * kv_heads * head_dim * dtype_bytes
    activations = (8 * hidden + 3 * intermediate) * dtype_bytes
    return keys_values + activations + 4 * vocab
