"""How many tokens one scoring or generation batch may hold on this device.

The CPU keeps the task's `evaluation.batch_tokens` (4,096 by default). On CUDA a default of that size leaves
the card idle (scoring the 135M model: 27,800 tokens/s at 4,096-token batches, 50,500 at 32,768 on an H200),
so when the task file does not set it the engine sizes it to the memory free once its model is loaded: a
quarter of it (the rest for the allocator's fragmentation and whatever else shares the card) divided by
what a token costs, rounded down to a power of two, never below the CPU default nor above `CUDA_MAX`.
"""

from __future__ import annotations

from harness.estimates.model_shapes import ModelShape

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


def token_bytes(shape: ModelShape, dtype_bytes: int = 2) -> int:
    """What one token of a batch costs a causal LM of this shape: its keys and values in every layer, a few
    hidden-size activations and the MLP's intermediate ones live at once, and a float32 row of logits
    (generation and scoring keep logits for some positions only, so this bounds them)."""
    keys_values = 2 * shape.layers * shape.kv_heads * shape.dim_per_head * dtype_bytes
    activations = (8 * shape.hidden + 3 * shape.intermediate) * dtype_bytes
    return keys_values + activations + 4 * shape.vocab
