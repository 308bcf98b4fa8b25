"""Choosing among a prompting rung's alternatives on the validation split, never on test.

`search: {space: {k: [4, 8, 16], selection: [fixed, similar]}}` tries every combination on the
validation split (outputs are stored like any other, so a re-run computes nothing), picks the best
on the task's primary metric (the first listed wins a tie), and the test split is then answered once,
by the chosen configuration. A bare list (`k: [2, 8]`) keeps its own meaning: one rung per value.
An option whose `auto` is decided on validation (`calibrate: auto`) joins the space by itself.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.data.store import Store
from harness.errors import InputError
from harness.inference.memo import AnswerMemo
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

    def implicit_space(self, context: RungContext) -> dict[str, list[Any]]:
        """Options left to be chosen on validation without a `search:` (an `auto` that applies here)."""
        return {}


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


def choice_space(config: RungConfig, context: RungContext) -> dict[str, list[Any]]:
    """What the rung chooses among on validation: its `search.space`, then the options it leaves to `auto`."""
    if not isinstance(config, Searchable):
        return {}
    space = dict(config.search.space) if config.search is not None else {}
    if context.validation:  # without a validation split an `auto` has nothing to be chosen on
        space.update({k: v for k, v in config.implicit_space(context).items() if k not in space})
    return space


def chosen_config(
    rung_type: RungType, config: RungConfig, context: RungContext, store: Store, where: str
) -> tuple[RungConfig, Selection | None]:
    """The configuration that answers the test split: as written, or its choice on validation when it has one."""
    if not isinstance(config, Searchable) or not choice_space(config, context):
        return config, None
    return choose_on_validation(rung_type, config, context, store, where)


def choose_on_validation(
    rung_type: RungType, config: Searchable, context: RungContext, store: Store, where: str
) -> tuple[RungConfig, Selection]:
    """Every combination of the space answered on validation; the best one's config and the record of all."""
    space = choice_space(config, context)
    assert space
    if not context.validation:
        raise InputError(f"{where}.search: needs a validation split (data.validation, or data.validation_size > 0)")
    wanted = config.search.metric if config.search is not None else "primary"
    metric = _metric(wanted, context.task_type, context.primary_metric, where)
    scorer = scorer_for(context.task_type, context.labels)
    shared = replace(context, memo=AnswerMemo())  # alternatives that ask the same prompts ask them once
    choices: list[Choice] = []
    configs: list[RungConfig] = []
    for params, candidate in alternatives(rung_type, config, where, space):
        started = time.perf_counter()
        run = run_predictor(rung_type.build(candidate, shared), context.validation, store, scorer, latency_sample=0)
        value = point_metric(context.task_type, metric, run.records, context.labels)
        choices.append(Choice(params, value, time.perf_counter() - started))
        configs.append(candidate)
    best = max(range(len(choices)), key=lambda i: (choices[i].value, -i))
    return configs[best], Selection(metric, space, choices, best, len(context.validation))


def alternatives(
    rung_type: RungType, config: Searchable, where: str, space: dict[str, list[Any]]
) -> list[tuple[dict[str, Any], RungConfig]]:
    """Every combination of the space: its values, the rung's options with them."""
    fixed = config.model_dump(exclude={"search"})
    for name, values in space.items():
        if name not in fixed:
            raise InputError(f"{where}.search.space.{name}: not an option of this rung (one of: {', '.join(fixed)})")
        if not values:
            raise InputError(f"{where}.search.space.{name}: expected a non-empty list of values")
    names = list(space)
    combinations = itertools.product(*(space[n] for n in names))
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
