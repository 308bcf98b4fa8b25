"""The rungs a task asks for, parsed and validated before any model is loaded."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from harness.errors import InputError, did_you_mean
from harness.remote.endpoint import Scoring
from harness.rungs import RungConfig, RungType, get_rung


@dataclass(frozen=True)
class PlannedRung:
    """One rung to run: its display name, its registered type and its validated options."""

    name: str
    type: RungType
    config: RungConfig
    endpoint: str | None = None  # the task's endpoint that answers its prompts; None: the local model
    scoring: Scoring = "auto"  # how an endpoint's answers to a labelled task are read (auto: probed)
    model: str | None = None  # another local model that answers its prompts; None: the task's model


def _expand_sweeps(rung_type: RungType, options: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """`k: [2, 8]` on a sweepable option gives one variant per value, named `_k2`, `_k8`."""
    variants: list[tuple[str, dict[str, Any]]] = [("", options)]
    for field in rung_type.sweep:
        values = options.get(field)
        if isinstance(values, list):
            variants = [
                (suffix + f"_{field}{value}", {**variant, field: value})
                for suffix, variant in variants
                for value in values
            ]
    return variants


def plan_rungs(
    entries: Sequence[str | dict[str, Any]],
    source: str,
    only: Sequence[str] | None = None,
    endpoints: Collection[str] = (),
    only_option: str = "--rungs",
) -> list[PlannedRung]:
    """Parse `rungs:` entries (a name, or a mapping with `rung:` and options), then keep `only` (the
    command-line option `only_option` named them).

    `endpoint:`, `scoring:` and `model:` say where a prompting rung runs, not what it does: they are
    taken off the rung's options (its stored results stay keyed as before) and checked against
    `endpoints` (a model folder is checked when the run is prepared).
    """
    planned: list[PlannedRung] = []
    for index, entry in enumerate(entries):
        where = f"{source}: rungs[{index}]"
        if isinstance(entry, str):
            kind, name, options = entry, entry, {}
        else:
            options = dict(entry)
            kind = options.pop("rung", None)
            if not isinstance(kind, str):
                raise InputError(f"{where}: expected a rung name or a mapping with 'rung: <name>'")
            name = options.pop("name", kind)
            if not isinstance(name, str) or not name.strip():
                raise InputError(f"{where}.name: expected a non-empty string")
        rung_type = get_rung(kind, where)
        endpoint, scoring = _placement(options, rung_type, endpoints, where)
        model = _other_model(options, rung_type, endpoint, where)
        for suffix, variant in _expand_sweeps(rung_type, options):
            config = rung_type.parse(variant, where)
            planned.append(PlannedRung(name + suffix, rung_type, config, endpoint, scoring, model))
    names = [p.name for p in planned]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"{source}: rung name '{name}' is used twice; give each a distinct 'name:'")
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            hint = did_you_mean(unknown[0], names) if len(unknown) == 1 else ""
            raise InputError(f"{only_option}: {', '.join(unknown)} not in the task{hint} (it has: {', '.join(names)})")
        planned = [p for p in planned if p.name in only]
    return planned


def _placement(
    options: dict[str, Any], rung_type: RungType, endpoints: Collection[str], where: str
) -> tuple[str | None, Scoring]:
    """Take `endpoint:` and `scoring:` off the options and check them."""
    endpoint = options.pop("endpoint", None)
    scoring = options.pop("scoring", "auto")
    if endpoint is None:
        if scoring != "auto":
            raise InputError(f"{where}.scoring: only a rung with an endpoint chooses how its answers are read")
        return None, "auto"
    if not rung_type.remote:
        raise InputError(
            f"{where}.endpoint: rung '{rung_type.kind}' changes the model's weights here, so it cannot run "
            "against an endpoint; only prompting rungs can (zero_shot, few_shot, rag)"
        )
    if not isinstance(endpoint, str) or endpoint not in endpoints:
        known = ", ".join(sorted(endpoints)) or "none: add an `endpoints:` section"
        raise InputError(f"{where}.endpoint: unknown endpoint {endpoint!r} (the task's endpoints: {known})")
    if scoring not in get_args(Scoring):
        raise InputError(f"{where}.scoring: expected one of {', '.join(get_args(Scoring))} (got {scoring!r})")
    return endpoint, scoring


def _other_model(options: dict[str, Any], rung_type: RungType, endpoint: str | None, where: str) -> str | None:
    """Take `model:` (another local model that answers a prompting rung) off the options and check it."""
    model = options.pop("model", None)
    if model is None:
        return None
    if not isinstance(model, str) or not model.strip():
        raise InputError(f"{where}.model: expected a model folder or id (got {model!r})")
    if not rung_type.remote:
        raise InputError(
            f"{where}.model: rung '{rung_type.kind}' trains on the task's model; only prompting rungs "
            "(zero_shot, few_shot, rag) can answer with another model"
        )
    if endpoint is not None:
        raise InputError(f"{where}: a rung answers with an endpoint or a local model, not both (it has both)")
    return model
