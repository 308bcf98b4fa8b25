"""Axis ticks a reader can read: round values on a 1-2-5 step, labelled with no more digits than they need."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

# (threshold, multiplier): a raw step this many times its power of ten rounds up to that multiple of it;
# the thresholds are the geometric means of 1-2, 2-5 and 5-10, so the step is the nearest on a log scale
ROUNDING = ((math.sqrt(50), 10.0), (math.sqrt(10), 5.0), (math.sqrt(2), 2.0))


def nice_step(span: float, intervals: int) -> float:
    """The 1, 2 or 5 x 10^n step nearest to dividing `span` into `intervals` parts."""
    raw = span / max(intervals, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next((m for threshold, m in ROUNDING if raw / magnitude >= threshold), 1.0) * magnitude


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """About `target` evenly spaced round values whose first is <= low and last >= high."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"ticks need finite bounds, got {low}, {high}")
    low, high = min(low, high), max(low, high)
    if high - low < 1e-12 * max(1.0, abs(high)):  # one value: a small round range around it
        half = abs(low) * 0.1 or 0.5
        low, high = low - half, high + half
    step = nice_step(high - low, target)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    places = decimals(step)
    # k * step, rounded to the step's digits: 0.30000000000000004 must not reach a label or a comparison
    return [round(k * step, places) + 0.0 for k in range(first, last + 1)]


def decimals(step: float) -> int:
    """Digits after the point that a multiple of `step` needs (0.05: 2, 0.2: 1, 5: 0)."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def tick_labels(ticks: Sequence[float], prefix: str = "") -> list[str]:
    """Each tick with the digits its spacing needs, the same count for all, thousands separated."""
    if len(ticks) < 2:
        return [f"{prefix}{t:,g}" for t in ticks]
    places = decimals(min(b - a for a, b in itertools.pairwise(ticks)))
    return [f"{prefix}{t + 0.0:,.{places}f}" for t in ticks]


def decade_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis over [low, high] (both > 0): the powers of ten around it, with 2 and 5 between
    when there are few."""
    first, last = math.floor(math.log10(low) + 1e-9), math.ceil(math.log10(high) - 1e-9)
    last = max(last, first + 1)
    decades = [10.0**e for e in range(first, last + 1)]
    if len(decades) > 3:
        return decades
    return sorted([*decades, *(d * m for d in decades[:-1] for m in (2.0, 5.0))])


def log_tick_labels(ticks: Sequence[float], prefix: str = "") -> list[str]:
    """A log axis's ticks, each with the digits it needs itself ($0.001, $0.01, $1, $10)."""
    return [f"{prefix}{t:,.{decimals(t)}f}" for t in ticks]
