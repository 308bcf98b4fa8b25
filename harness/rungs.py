"""The rung registry and the one-call protocol every rung implements.

A rung is a factory registered by name: `@rung("few_shot", config=FewShotConfig)`. Built-in rungs
register exactly as a third-party one does (a module imported through the `ladder.rungs` entry
point group), and rungs never import each other.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.engine import Engine
from harness.errors import InputError
from harness.prompts import PromptBuilder
from harness.types import Example, Output


class RungConfig(BaseModel):
    """Base of every rung's options: unknown options are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Predictor(Protocol):
    """What a built rung is: answers for a batch of examples, and a fingerprint of what decides them."""

    def fingerprint(self) -> str:
        """A hash of everything that determines the outputs (model, prompt, options)."""
        ...

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """One output per example, in order; the runner stamps the latency."""
        ...


# A predictor may also define `prepare()`: one-off work (training, building an index, loading a
# model) that the runner does before it starts timing requests.


@dataclass(frozen=True)
class RungContext:
    """What a rung may use to build its predictor."""

    engine: Engine
    prompts: PromptBuilder
    task_type: str
    labels: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    model_fingerprint: str
    seed: int
    task_dir: Path = Path(".")
    cache_dir: Path = Path(".advisor")
    embedder: Callable[[], Any] | None = None  # shared, loaded on first use
    model_path: str = ""  # where the base model's weights are (tuned rungs reload or quantize it)
    model_name: str = ""
    device: str = "cpu"
    training_progress: Callable[[str, int, int, float, float], None] | None = None  # rung, step, steps, loss, tok/s
    primary_metric: str = ""  # the metric that ranks rungs (task_metrics.choose_primary_metric); "" = type default

    def resolve(self, path: str) -> Path:
        """A path from the task file, relative to the task's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.task_dir / candidate


Factory = Callable[[Any, RungContext], Predictor]
C = TypeVar("C", bound=RungConfig)


@dataclass(frozen=True)
class RungType:
    """A registered rung: its name, its options model and its factory."""

    kind: str
    config_model: type[RungConfig]
    build: Factory
    sweep: tuple[str, ...] = ()  # options whose list value means one rung per value
    step: int = 0  # place on the ladder: 0 prompt, 1 demonstrations, 2 retrieval, 3 adapter, 4 full weights

    def parse(self, options: dict[str, Any], where: str) -> RungConfig:
        """Validate options; the first problem is one line naming the option."""
        try:
            return self.config_model(**options)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "options"
            raise InputError(f"{where}.{field}: {first['msg']}") from None


_REGISTRY: dict[str, RungType] = {}
_PLUGINS_LOADED = False


LADDER_STEPS = {0: "prompt", 1: "demonstrations", 2: "retrieval", 3: "adapter", 4: "full fine-tune"}


def rung(
    kind: str, config: type[C], sweep: tuple[str, ...] = (), *, step: int
) -> Callable[[Callable[[C, RungContext], Predictor]], Callable[[C, RungContext], Predictor]]:
    """Register a rung factory under `kind` with its options model, sweepable options and ladder step.

    The step orders rungs by how costly and hard to undo adopting them is (see LADDER_STEPS); the
    advisor walks the ladder upwards and ships the first rung that is not clearly beaten.
    """
    if step not in LADDER_STEPS:
        raise ValueError(f"rung '{kind}': step must be one of {sorted(LADDER_STEPS)}")

    def register(factory: Callable[[C, RungContext], Predictor]) -> Callable[[C, RungContext], Predictor]:
        _REGISTRY[kind] = RungType(kind, config, factory, sweep, step)
        return factory

    return register


def get_rung(kind: str, where: str = "rungs") -> RungType:
    """The registered rung of this name; an unknown name lists the close matches."""
    load_plugins()
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    close = difflib.get_close_matches(kind, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise InputError(f"{where}: unknown rung '{kind}'{hint} (known: {', '.join(sorted(_REGISTRY))})")


def load_plugins() -> None:
    """Import every module of the `ladder.rungs` entry point group, the built-in ones included."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for point in entry_points(group="ladder.rungs"):
        point.load()
