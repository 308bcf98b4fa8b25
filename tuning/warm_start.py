"""Warm starts: a search starts from the choice of a finished search of the same family on the same task.

qlora is lora over a 4-bit base and r=4 is r=16 with a smaller adapter: their best learning rates
are close. Once one of them has searched, the next starts at its choice and trains it with a quarter
of the trials (that choice alone, by default) instead of exploring the whole range again; the result
says so.

A finished search records its choice under a key of what makes two searches comparable: the
method's family, the base model, the data, the prompt, the selection metric and the seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.data.atomic import write_text_atomically
from harness.distributed import writes_files
from tuning.search import WarmStart
from tuning.spaces import Dimension, Range

CHOICES = "choices"


def _path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "searches" / CHOICES / f"{key}.json"


def record_choice(cache_dir: Path, key: str, method: str, params: dict[str, Any], search: str) -> None:
    """Remember a finished search's choice for the family (the first one recorded stays)."""
    path = _path(cache_dir, key)
    if writes_files() and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps({"method": method, "params": params, "search": search}))


def find_choice(cache_dir: Path, key: str, search: str, space: dict[str, Dimension]) -> WarmStart | None:
    """The recorded choice of another search of the family, limited to what `space` explores and holds."""
    path = _path(cache_dir, key)
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text(encoding="utf-8"))
    if recorded["search"] == search:  # this very search recorded it
        return None
    params = {name: value for name, value in recorded["params"].items() if name in space and _holds(space[name], value)}
    if not params:
        return None
    return WarmStart(method=recorded["method"], params=params, search=recorded["search"])


def _holds(dimension: Dimension, value: Any) -> bool:
    if isinstance(dimension, Range):
        return isinstance(value, (int, float)) and dimension.low <= value <= dimension.high
    return value in dimension
