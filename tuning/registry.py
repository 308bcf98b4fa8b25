"""The tuning-method registry: how each method makes a base trainable, what it saves, its learning rates.

A tuned rung registers its method with `tuning.tuned.tuned_rung`, one call beside its wrap function
(tuning/lora.py), exactly as a plug-in does:
`tuned_rung(TuningMethod("lora", wrap_lora, learning_rate=1e-3, family="lora"), config=LoraConfig, step=3)`.
Nothing elsewhere branches on a method's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from harness.registry import Registry
from harness.rungs import RungConfig

Options = TypeVar("Options", bound=RungConfig)  # the method's own options model (LoraOptions for lora)
Wrap = Callable[[Any, Options, Sequence[int]], Any]  # (base to own, options, init tokens) -> trainable model
AddAdapter = Callable[[Any, Options, str], None]  # (a model the wrap made, options, name): another adapter on it


@dataclass(frozen=True)
class TuningMethod(Generic[Options]):
    """One way of tuning a model, and the defaults its search starts from."""

    name: str
    wrap: Wrap[Options]  # makes the base (a copy this method may change) trainable
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
    # Trains sharded under an FSDP launch (tuning/sharding.py); False: replicated on every rank, as under DDP
    # (virtual tokens: peft runs their encoder outside the model's forward, where FSDP has not gathered it).
    shards: bool = True
    # Adds another adapter beside the one the wrap made (initialised as the wrap would, from the same seed),
    # so a search's trials can train together over one frozen base (tuning/trial_batch.py); None: each
    # trial trains a model of its own.
    add_adapter: AddAdapter[Options] | None = None


# methods register from rung modules, so the `ladder.rungs` group is the one to import
_METHODS: Registry[TuningMethod[Any]] = Registry("tuning method", "ladder.rungs")


def export_form(method: TuningMethod[Any]) -> Literal["merged", "whole"] | None:
    """How a method's trained weights become one plain model for export: the whole model it saves, its adapter
    merged into the base, or None when it cannot merge (a 4-bit base, virtual tokens)."""
    if method.artifact == "model":
        return "whole"
    return "merged" if method.mergeable else None


def register_method(method: TuningMethod[Options], origin: str) -> TuningMethod[Options]:
    """Add a method (through `tuning.tuned.tuned_rung`, which registers its rung beside it)."""
    _METHODS.add(method.name, method, origin)
    return method


def method_names() -> list[str]:
    """Every registered method, built-in and plugged in."""
    return _METHODS.names()


def get_method(name: str) -> TuningMethod[Any]:
    """The registered method of this name; an unknown name lists the close matches."""
    return _METHODS.get(name)
