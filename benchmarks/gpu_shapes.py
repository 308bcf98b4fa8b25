"""GPU acceptance: the random-weight Llama shapes, their parameter counts, and FLOPs/MFU accounting.

Tokens are useful tokens: the rows' real (non-pad) tokens. MFU = model FLOPs/s over the device's dense bf16 peak
(PEAK_TFLOPS by device name; none on CPU): `mfu_6n` counts 6·N per token with N all parameters (the usual quote);
`mfu_lora` counts what LoRA training needs: 2·N_lin forward + 2·N_lin backward (input gradients only: frozen weights
get no weight gradient) + 6·N_adapter, N_lin the decoder layers' linear weights (embeddings, lm_head and attention
scores left out, for every method alike, so a baseline's full-vocabulary logits are not counted as useful work).
"""

from __future__ import annotations

from typing import Any

from benchmarks.gpu_setup import LORA_OPTIONS
from harness.estimates.model_shapes import ModelShape, shape_from_config

LORA: dict[str, Any] = LORA_OPTIONS  # r 16, alpha 32, no dropout, all-linear: every method trains this adapter
PEAK_TFLOPS = [("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0), ("A100", 312.0)]
SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 1024, "tie_word_embeddings": True},
    "135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
             "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True, "rope_theta": 100000.0},
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": True, "rope_theta": 500000.0},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False, "rope_theta": 500000.0},
}  # fmt: skip


def flops_note() -> str:
    """The paragraph above on what tokens and MFU count (written into the result JSON)."""
    return (__doc__ or "").split("Tokens are useful tokens:")[1].split("\n\n")[0].strip()


def llama_config(shape: str) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(**SHAPES[shape], max_position_embeddings=8192, rms_norm_eps=1e-5, pad_token_id=0)


def model_shape(shape: str) -> ModelShape:
    return shape_from_config(SHAPES[shape], where=f"benchmarks.gpu_shapes.SHAPES[{shape!r}]")


def parameter_counts(shape: str) -> dict[str, int]:
    """Analytic counts: all parameters (norms aside), the decoder layers' linear weights, LoRA's (r 16, all-linear)."""
    dims = model_shape(shape)
    linear = dims.linear_params()
    embeddings = dims.vocab * dims.hidden * (1 if dims.tied_embeddings else 2)
    # A: in x r, B: r x out for each of q, k, v, o, gate, up, down
    adapter = dims.layers * LORA["r"] * sum(a + b for a, b in dims.linear_shapes().values())
    return {"all": linear + embeddings, "linear": linear, "adapter": adapter}


def peak_tflops(device_name: str | None) -> float | None:
    if not device_name:
        return None
    return next((peak for key, peak in PEAK_TFLOPS if key in device_name), None)


def with_mfu(row: dict[str, Any], shape: str, device_name: str | None) -> dict[str, Any]:
    tps, peak = row.get("tokens_per_s"), peak_tflops(device_name)
    counts = parameter_counts(shape)
    row["parameters"] = counts
    if tps and peak:
        lora_flops = 4 * counts["linear"] + 6 * counts["adapter"]
        row["mfu_6n"] = round(6 * counts["all"] * tps / (peak * 1e12), 4)
        row["mfu_lora"] = round(lora_flops * tps / (peak * 1e12), 4)
    return row
