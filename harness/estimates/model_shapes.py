"""Model shapes for the fine-tuning arithmetic: a llama-like `ModelShape` from a parameter count (snapped to
a known model), from a model's config.json, and parameter counts as people write them ("7B", "135M")."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import InputError


@dataclass(frozen=True)
class ModelShape:
    """A llama-like decoder: what memory and FLOPs depend on. `params` is the count the estimates use."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int | None = None  # None: hidden // heads
    tied_embeddings: bool = False
    source: str = ""

    @property
    def dim_per_head(self) -> int:
        """Width of one attention head."""
        return self.head_dim or self.hidden // self.heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of one layer, by its llama module name."""
        h, q, kv, i = self.hidden, self.heads * self.dim_per_head, self.kv_heads * self.dim_per_head, self.intermediate
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def linear_params(self) -> int:
        """Parameters in the layers' projections: what 4-bit quantisation and LoRA apply to."""
        return self.layers * sum(a * b for a, b in self.linear_shapes().values())

    def implied_params(self) -> int:
        """The parameter count these dimensions add up to (embeddings, projections, norms)."""
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return embeddings + self.linear_params() + (2 * self.layers + 1) * self.hidden


# Published configs (config.json on the Hugging Face hub), smallest first.
def _known(name: str, dims: tuple[int, int, int, int, int, int], tied: bool) -> ModelShape:
    shape = ModelShape(0, *dims, tied_embeddings=tied, source=name)
    return replace(shape, params=shape.implied_params())


KNOWN_SHAPES: dict[str, ModelShape] = {
    name: _known(name, dims, tied)
    for name, dims, tied in (
        ("SmolLM2-135M", (30, 576, 1536, 9, 3, 49152), True),
        ("SmolLM2-360M", (32, 960, 2560, 15, 5, 49152), True),
        ("SmolLM2-1.7B", (24, 2048, 8192, 32, 32, 49152), True),
        ("Llama-2-7B", (32, 4096, 11008, 32, 32, 32000), False),
        ("Llama-3-8B", (32, 4096, 14336, 32, 8, 128256), False),
        ("Llama-2-13B", (40, 5120, 13824, 40, 40, 32000), False),
        ("LLaMA-33B", (60, 6656, 17920, 52, 52, 32000), False),
        ("LLaMA-65B", (80, 8192, 22016, 64, 64, 32000), False),
        ("Llama-2-70B", (80, 8192, 28672, 64, 8, 32000), False),
    )
}
SNAP = 0.10  # a count within 10% of a known model is that model: "7B" means Llama-2-7B's 6.74B


def shape_for_params(n: int) -> ModelShape:
    """A plausible llama-like shape for `n` parameters.

    Within 10% of a known config: that config. Otherwise the width is interpolated geometrically
    between the two known configs around `n` (extrapolated as n^(1/3) beyond them), as is the MLP
    ratio; head width, GQA group and vocabulary come from the nearer one; and the layer count makes
    the shape add up to `n`.
    """
    if n <= 0:
        raise InputError(f"params: expected a positive parameter count (got {n})")
    known = sorted(((s.implied_params(), s) for s in KNOWN_SHAPES.values()), key=lambda pair: pair[0])
    size, nearest = min(known, key=lambda pair: abs(math.log(n / pair[0])))
    if abs(n / size - 1) <= SNAP:
        return replace(nearest, params=n, source=f"{nearest.source} config")
    below = [pair for pair in known if pair[0] <= n]
    above = [pair for pair in known if pair[0] > n]
    if below and above:
        (low_n, low), (high_n, high) = below[-1], above[0]
        t = math.log(n / low_n) / math.log(high_n / low_n)
        width = math.exp((1 - t) * math.log(low.hidden) + t * math.log(high.hidden))
        ratio = (1 - t) * low.intermediate / low.hidden + t * high.intermediate / high.hidden
        source = f"interpolated between {low.source} and {high.source}"
    else:
        edge_n, edge = known[0] if not below else known[-1]
        width = edge.hidden * (n / edge_n) ** (1 / 3)
        ratio = edge.intermediate / edge.hidden
        source = f"scaled from {edge.source}"
    head_dim, group = nearest.dim_per_head, max(1, nearest.heads // nearest.kv_heads)
    heads = max(1, round(width / head_dim / group)) * group
    hidden, kv_heads = heads * head_dim, heads // group
    intermediate = max(64, round(hidden * ratio / 64) * 64)
    draft = ModelShape(n, 1, hidden, intermediate, heads, kv_heads, nearest.vocab, head_dim, nearest.tied_embeddings)
    per_layer = draft.linear_params() + 2 * hidden
    layers = max(1, round((n - (draft.implied_params() - per_layer)) / per_layer))
    return replace(draft, layers=layers, source=source)


_CONFIG_KEYS = {
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "heads": ("num_attention_heads", "n_head"),
    "vocab": ("vocab_size",),
}


def shape_from_config(config: Mapping[str, Any], where: str = "config.json") -> ModelShape:
    """The shape a Hugging Face config.json describes (llama, mistral, qwen and similar dense decoders)."""
    if not isinstance(config.get("hidden_size"), int) and isinstance(config.get("text_config"), Mapping):
        config = config["text_config"]  # multimodal configs keep the language model's under text_config
    if any(config.get(key, 0) not in (0, 1, None) for key in ("num_local_experts", "num_experts", "n_routed_experts")):
        raise InputError(f"{where}: mixture-of-experts models are not supported; pass --params instead")
    found: dict[str, int] = {}
    for field, keys in _CONFIG_KEYS.items():
        value = next((config[key] for key in keys if key in config), None)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InputError(f"{where}: expected a positive integer '{keys[0]}' (got {value!r})")
        found[field] = value
    kv_heads = _optional_int(config, "num_key_value_heads", found["heads"], where)
    intermediate = _optional_int(config, "intermediate_size", 4 * found["hidden"], where)
    head_dim = _optional_int(config, "head_dim", 0, where) or None
    shape = ModelShape(
        0,
        found["layers"],
        found["hidden"],
        intermediate,
        found["heads"],
        kv_heads,
        found["vocab"],
        head_dim,
        bool(config.get("tie_word_embeddings", False)),
        source=where,
    )
    return replace(shape, params=shape.implied_params())


def _optional_int(config: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{where}: expected a positive integer '{key}' (got {value!r})")
    return value


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}


def parse_params(text: str | int) -> int:
    """A parameter count: "7B", "70b", "135M", "1.5e9" or 7_000_000_000 (between 1M and 100T)."""
    expected = "expected a parameter count like 7B, 135M or 1.5e9"
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise InputError(f"--params: {expected} (got {text!r})")
    match = re.fullmatch(r"(\d+(?:\.\d*)?(?:e\d+)?)\s*([kmbgt]?)", str(text).strip().replace("_", ""), re.IGNORECASE)
    if match is None:
        raise InputError(f"--params: {expected} (got {text!r})")
    value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if not 1e6 <= value <= 1e14:
        raise InputError(f"--params: {expected}, between 1M and 100T (got {text!r})")
    return round(value)
