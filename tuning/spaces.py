"""What a tuned rung's search explores, and its options.

The learning rate matters far more than anything else (a 10x learning-rate error costs about 6x
more than a 16x change of rank in the published LoRA sweeps), and the best rate is known well
enough to centre the search on it: each method registers its prior for models of up to a few
billion parameters (LoRA ~1e-3, about 10x full fine-tuning's), scaled down for larger models
(LoRA ~3e-4 at 8B-70B). A fixed run (`search: false`) uses the prior; the search explores one
decade around it on a log scale, starting at it. Epochs are chosen by early stopping on the
validation metric inside each trial, so they are not part of the space.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from harness.schema import NumbersNotBooleans
from tuning.registry import get_method


class Range(NumbersNotBooleans):
    """A numeric range to search: `{low: 1e-4, high: 3e-3, log: true}`; integers when both ends are."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    low: float
    high: float
    log: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    def integer(self) -> bool:
        """Both ends whole numbers: the searched value is an integer (a rank, a count)."""
        return float(self.low).is_integer() and float(self.high).is_integer() and not self.log


Choices = list[Any]
Dimension = Range | Choices  # a list is a set of choices; a range is sampled


SMALL_MODEL = 3e9  # up to here the registered priors hold as they are
LARGE_MODEL = 8e9  # from here on they are scaled by LARGE_MODEL_SCALE: LoRA's 1e-3 becomes 3e-4
LARGE_MODEL_SCALE = 0.3


def size_scale(parameters: int | None) -> float:
    """How much lower the best learning rate is for a model of this size (log-interpolated between the sizes)."""
    if parameters is None or parameters <= SMALL_MODEL:
        return 1.0
    if parameters >= LARGE_MODEL:
        return LARGE_MODEL_SCALE
    return float(LARGE_MODEL_SCALE ** (math.log(parameters / SMALL_MODEL) / math.log(LARGE_MODEL / SMALL_MODEL)))


def prior_learning_rate(method: str, parameters: int | None) -> float:
    """The method's best-known learning rate for a model of this many parameters (None: unknown, taken as small)."""
    return get_method(method).learning_rate * size_scale(parameters)


def default_space(method: str, parameters: int | None = None) -> dict[str, Dimension]:
    """The method's default search space: its learning rate on a log scale, one decade around its prior unless
    the method registers a range (every other option keeps its default)."""
    spec = get_method(method)
    scale = size_scale(parameters)
    if spec.learning_rate_range is not None:
        low, high = (bound * scale for bound in spec.learning_rate_range)
    else:
        prior = prior_learning_rate(method, parameters)
        low, high = prior / math.sqrt(10), prior * math.sqrt(10)
    return {"learning_rate": Range(low=float(f"{low:.3g}"), high=float(f"{high:.3g}"), log=True)}


class SearchOptions(NumbersNotBooleans):
    """`search:` of a tuned rung: how many trials, which validation metric selects, what to explore."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(default=4, ge=1, le=200)
    metric: str = "primary"  # primary (the task's primary metric), loss, or a metric of the task type
    space: dict[str, Range | Choices] = Field(default_factory=dict)
    budget: str | None = Field(default=None, pattern=r"^\d+(\.\d+)?\s*[smh]$")  # opt-in wall clock: 90s, 10m, 2h
    pruner: str = Field(default="successive_halving", pattern=r"^(successive_halving|hyperband|none)$")
    # the whole search trains at most this many times the epochs of its first trial (which runs to its end)
    relative_budget: float = Field(default=2.0, ge=1.0, le=100.0)
    # start from a finished search of the same family on this task (qlora from lora), with a quarter of the trials
    warm_start: bool = True
    # trials trained together in one pass over the frozen base (tuning/trial_batch.py); "auto": as many as the
    # card's micro-batch holds steps of, on CUDA, one elsewhere. How the trials run, not what they are: no key.
    trials_at_once: int | Literal["auto"] = Field(default="auto", ge=1, le=16, exclude=True)

    def budget_seconds(self) -> float | None:
        """The wall-clock budget in seconds, or None (the default budget counts trials and epochs)."""
        if self.budget is None:
            return None
        text = self.budget.strip()
        return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


def center(dimension: Dimension) -> Any:
    """The middle of a range (geometric for a log range), or the first choice: the search's first trial."""
    if isinstance(dimension, Range):
        middle = (dimension.low * dimension.high) ** 0.5 if dimension.log else (dimension.low + dimension.high) / 2
        return round(middle) if dimension.integer() else middle
    return dimension[0]


def describe(space: dict[str, Dimension]) -> dict[str, Any]:
    """The space as plain JSON for cards and reports."""
    return {name: dim.model_dump() if isinstance(dim, Range) else list(dim) for name, dim in space.items()}
