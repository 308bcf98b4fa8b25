"""Choosing among a prompting rung's alternatives on the validation split, never on test.

`search: {space: {k: [4, 8, 16], selection: [fixed, similar]}}` tries every combination on the
validation split (outputs are stored like any other, so a re-run computes nothing), picks the best
on the task's primary metric (the first listed wins a tie), and the test split is then answered once,
by the chosen configuration. A bare list (`k: [2, 8]`) keeps its own meaning: one rung per value.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.data.store import Store
from harness.errors import InputError
from harness.metrics.scoring import scorer_for
from harness.metrics.task_metrics import metric_names, point_metric, primary_metric
from harness.rungs import RungConfig, RungContext, RungType
from harness.runner import run_predictor


class ChoiceSearch(BaseModel):
    """The alternatives to choose among, each option a list of values, and the validation metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: dict[str, list[Any]] = Field(min_length=1)
    metric: str = "primary"


class Searchable(RungConfig):
    """Options of a rung whose alternatives can be chosen on validation (`search:`)."""

    search: ChoiceSearch | None = None


@dataclass(frozen=True)
class Choice:
    """One alternative as tried on the validation split."""

    params: dict[str, Any]
    value: float
    seconds: float


@dataclass(frozen=True)
class Selection:
    """The alternatives tried, the metric, and which one was chosen."""

    metric: str
    space: dict[str, list[Any]]
    choices: list[Choice]
    chosen: int
    validation_examples: int


def choose_on_validation(
    rung_type: RungType, config: Searchable, context: RungContext, store: Store, where: str
) -> tuple[RungConfig, Selection]:
    """Every combination of the space answered on validation; the best one's config and the record of all."""
    search = config.search
    assert search is not None
    if not context.validation:
        raise InputError(f"{where}.search: needs a validation split (data.validation, or data.validation_size > 0)")
    metric = _metric(search.metric, context.task_type, context.primary_metric, where)
    scorer = scorer_for(context.task_type, context.labels)
    choices: list[Choice] = []
    configs: list[RungConfig] = []
    for params, candidate in alternatives(rung_type, config, where):
        started = time.perf_counter()
        run = run_predictor(rung_type.build(candidate, context), context.validation, store, scorer, latency_sample=0)
        value = point_metric(context.task_type, metric, run.records, context.labels)
        choices.append(Choice(params, value, time.perf_counter() - started))
        configs.append(candidate)
    best = max(range(len(choices)), key=lambda i: (choices[i].value, -i))
    return configs[best], Selection(metric, dict(search.space), choices, best, len(context.validation))


def alternatives(rung_type: RungType, config: Searchable, where: str) -> list[tuple[dict[str, Any], RungConfig]]:
    """Every combination of the search space: (its values, the rung's options with them)."""
    search = config.search
    assert search is not None
    fixed = config.model_dump(exclude={"search"})
    for name, values in search.space.items():
        if name not in fixed:
            raise InputError(f"{where}.search.space.{name}: not an option of this rung (one of: {', '.join(fixed)})")
        if not values:
            raise InputError(f"{where}.search.space.{name}: expected a non-empty list of values")
    names = list(search.space)
    combinations = itertools.product(*(search.space[n] for n in names))
    return [
        (params, rung_type.parse({**fixed, **params}, where))
        for params in (dict(zip(names, combination, strict=True)) for combination in combinations)
    ]


def _metric(wanted: str, task_type: str, primary: str, where: str) -> str:
    if wanted == "primary":
        return primary or primary_metric(task_type)
    known = metric_names(task_type)
    if wanted not in known:
        raise InputError(f"{where}.search.metric: '{wanted}' is not a {task_type} metric (one of: primary, {known})")
    return wanted
