"""What a task type is made of: a scorer of one output, and named statistics over per-example columns.

These types sit below both the task-type registry (harness/task_types.py), which holds them, and the
metrics (harness/metrics/), which compute them and look task types up, so neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.types import Example, Output, Score

Scorer = Callable[[Example, Output], Score]
"""Judges one output against its example, the same way for every rung."""

Columns = dict[str, np.ndarray]
"""Per-example columns of a rung's scores (one row per example)."""

Statistic = Callable[[Columns, np.ndarray], np.ndarray]
"""A metric's value per bootstrap resample, given the columns and the resampled row indices."""


@dataclass(frozen=True)
class MetricDefinition:
    """A named statistic of a task type's columns; `needs` lists the columns it reads."""

    name: str
    statistic: Statistic
    needs: tuple[str, ...]
