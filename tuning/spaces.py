"""What a tuned rung's search explores, and its options.

A fixed run (`search: false`) uses the method's default learning rate. The search explores the
learning rate on a log scale over the range the method registers (tuning/registry.py), which spans
its published settings; epochs are chosen by early stopping on the validation metric inside each
trial, so they are not part of the space.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuning.registry import get_method


class Range(BaseModel):
    """A numeric range to search: `{low: 1e-4, high: 3e-3, log: true}`; integers when both ends are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def default_space(method: str) -> dict[str, Dimension]:
    """The method's default search space: its learning rate on a log scale (every other option keeps its default)."""
    low, high = get_method(method).learning_rate_range
    return {"learning_rate": Range(low=low, high=high, log=True)}


class SearchOptions(BaseModel):
    """`search:` of a tuned rung: how many trials, which validation metric selects, what to explore."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(default=4, ge=1, le=200)  # with successive halving, about 2.5x one run of the chosen trial
    metric: str = "primary"  # primary (the task's primary metric), loss, or a metric of the task type
    space: dict[str, Range | Choices] = Field(default_factory=dict)
    budget: str | None = Field(default=None, pattern=r"^\d+(\.\d+)?\s*[smh]$")  # opt-in wall clock: 90s, 10m, 2h
    pruner: str = Field(default="successive_halving", pattern=r"^(successive_halving|hyperband|none)$")

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
