"""How every number of a run is measured: one settings object instead of loose seed/resamples arguments."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Measurement:
    """The seed of every bootstrap, its number of resamples, and what "clearly" means in a comparison.

    `confidence` is the level of paired comparisons and of the decision (a rung's own interval is always
    95%); `tolerance` is the quality gap, on the primary metric's 0-1 scale, not worth a step up.
    """

    seed: int = 0
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = 0.95
    tolerance: float = 0.01


DEFAULT_MEASUREMENT = Measurement()
