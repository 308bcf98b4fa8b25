"""The tuning-method registry: how each method makes a base trainable, what it saves, its learning rates.

A method registers beside its rung (tuning/lora.py registers `lora`), exactly as a plug-in would:
`register_method(TuningMethod("lora", wrap_lora, learning_rate=1e-3, family="lora"))`.
Nothing elsewhere branches on a method's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import InputError, did_you_mean
from harness.rungs import load_plugins

Wrap = Callable[[Any, dict[str, Any], Sequence[int]], Any]  # (base to own, options, init tokens) -> trainable model


@dataclass(frozen=True)
class TuningMethod:
    """One way of tuning a model, and the defaults its search starts from."""

    name: str
    wrap: Wrap  # makes the base (a copy this method may change) trainable
    # The best-known learning rate for models of up to a few billion parameters: a fixed run's
    # (`search: false`) and the centre of the search's range (both scaled down for larger models).
    learning_rate: float
    learning_rate_range: tuple[float, float] | None = None  # the search's, on a log scale; None: a decade around it
    # Methods of one family share the best learning rate (qlora is lora over a 4-bit base), so a search
    # starts from a finished search of the family on the same task (tuning/warm_start.py).
    family: str | None = None
    base: Literal["copy", "quantized"] = "copy"  # quantized: its own 4-bit nf4 load of the base weights
    artifact: Literal["adapter", "model"] = "adapter"  # model: the whole model is saved and loaded (full)
    mergeable: bool = False  # `advisor train --merge` can fold the adapter into the base
    starts_from_instruction: bool = False  # virtual tokens start from the instruction's token embeddings


_METHODS: dict[str, TuningMethod] = {}


def register_method(method: TuningMethod) -> TuningMethod:
    """Add a method to the registry (a rung module does this at import)."""
    _METHODS[method.name] = method
    return method


def method_names() -> list[str]:
    """Every registered method, built-in and plugged in."""
    load_plugins()
    return sorted(_METHODS)


def get_method(name: str) -> TuningMethod:
    """The registered method of this name; an unknown name lists the close matches."""
    if name not in _METHODS:
        load_plugins()
    if name in _METHODS:
        return _METHODS[name]
    hint = did_you_mean(name, _METHODS)
    raise InputError(f"unknown tuning method '{name}'{hint} (known: {', '.join(sorted(_METHODS))})")
