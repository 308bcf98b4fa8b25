"""The rungs a task asks for, parsed and validated before any model is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import InputError
from harness.rungs import RungConfig, RungType, get_rung


@dataclass(frozen=True)
class PlannedRung:
    """One rung to run: its display name, its registered type and its validated options."""

    name: str
    type: RungType
    config: RungConfig


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
    entries: Sequence[str | dict[str, Any]], source: str, only: Sequence[str] | None = None
) -> list[PlannedRung]:
    """Parse `rungs:` entries (a name, or a mapping with `rung:` and options), then keep `only`."""
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
        for suffix, variant in _expand_sweeps(rung_type, options):
            planned.append(PlannedRung(name + suffix, rung_type, rung_type.parse(variant, where)))
    names = [p.name for p in planned]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"{source}: rung name '{name}' is used twice; give each a distinct 'name:'")
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise InputError(f"--rungs: {', '.join(unknown)} not in the task (it has: {', '.join(names)})")
        planned = [p for p in planned if p.name in only]
    return planned
