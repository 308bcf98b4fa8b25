"""The inference engine's batch token budget sized to the device: the CPU's unchanged, CUDA's from free memory."""

from __future__ import annotations

from typing import Any

from harness.estimates.model_shapes import shape_from_config
from harness.inference.engine import Engine
from harness.inference.sizing import CUDA_MAX, device_batch_tokens, token_bytes

GIB = 1024**3


def test_the_cpu_keeps_the_default_whatever_memory_there_is() -> None:
    assert device_batch_tokens(4096, "cpu", 500 * GIB, 1000) == 4096
    assert device_batch_tokens(1000, "mps", 500 * GIB, 1000) == 1000


def test_cuda_grows_with_free_memory_in_powers_of_two_up_to_a_cap() -> None:
    per_token = 240_000  # about the 135M model's cost in bf16
    small = device_batch_tokens(4096, "cuda", 8 * GIB, per_token)  # a quarter of 8 GiB holds 8,947 tokens
    large = device_batch_tokens(4096, "cuda", 40 * GIB, per_token)
    assert (small, large) == (8192, 32_768)
    assert device_batch_tokens(4096, "cuda", 130 * GIB, per_token) == CUDA_MAX
    assert device_batch_tokens(4096, "cuda", 1 * GIB, per_token) == 4096  # never below the default


def test_a_tokens_cost_counts_keys_values_activations_and_logits(tiny_model: Any) -> None:
    config = tiny_model.config
    shape = shape_from_config(config.to_dict())
    cost = token_bytes(shape, 2)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    keys_values = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 2
    assert cost > keys_values + 4 * config.vocab_size
    assert token_bytes(shape, 4) > cost


def test_a_deferred_engine_on_the_cpu_keeps_its_budget_once_loaded(tiny_model: Any, tiny_tokenizer: Any) -> None:
    engine = Engine.deferred(lambda: tiny_model, tiny_tokenizer, "cpu", max_batch_tokens=4096, size_to_device=True)
    assert engine.model is tiny_model and engine.max_batch_tokens == 4096
