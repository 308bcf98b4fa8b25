"""Is rung A better than rung B on the same test examples? Paired bootstrap and McNemar's test.

Both rungs answer the same examples, so their errors are correlated; resampling the examples
(not each rung's scores separately) keeps that pairing, and gives a much tighter interval on the
difference than two independent intervals would. The advisor's "clearly better" stands on these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.metrics.bootstrap import bootstrap_indices
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement

Statistic = Callable[[np.ndarray], np.ndarray]  # (k, n) index rows -> k metric values


@dataclass(frozen=True)
class PairedDifference:
    """metric(A) - metric(B) on the same examples, its percentile interval and a two-sided p-value."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int

    def clearly_positive(self) -> bool:
        """A is better than B at the interval's confidence: the whole interval lies above zero."""
        return self.ci_low > 0


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired correct/incorrect answers: b = only A right, c = only B right."""

    only_a: int
    only_b: int
    statistic: float
    p_value: float
    exact: bool


def paired_bootstrap(
    statistic_a: Statistic,
    statistic_b: Statistic,
    n: int,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> PairedDifference:
    """Bootstrap the difference of two statistics over the same resampled example indices."""
    if n == 0:
        nan = float("nan")
        return PairedDifference(nan, nan, nan, nan, 0)
    everything = np.arange(n)[None, :]
    observed = float(statistic_a(everything)[0] - statistic_b(everything)[0])
    indices = bootstrap_indices(n, measurement.resamples, measurement.seed)
    draws = statistic_a(indices) - statistic_b(indices)
    tail = (1.0 - measurement.confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return PairedDifference(observed, float(low), float(high), _two_sided_p(draws), n)


def paired_mean_difference(
    values_a: Sequence[float], values_b: Sequence[float], measurement: Measurement = DEFAULT_MEASUREMENT
) -> PairedDifference:
    """Difference of means of per-example values (accuracy, token F1, ROUGE-L), paired by example."""
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same examples: {a.shape} vs {b.shape}")
    return paired_bootstrap(lambda idx: a[idx].mean(axis=1), lambda idx: b[idx].mean(axis=1), len(a), measurement)


def mcnemar(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray) -> McNemar:
    """Exact binomial McNemar test when fewer than 25 answers differ, else chi-square with continuity correction.

    Each side is one rung's per-example correctness, as booleans or a 0/1 array."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired answers need the same examples: {a.shape} vs {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    if discordant == 0:
        return McNemar(0, 0, 0.0, 1.0, True)
    if discordant < 25:
        smaller = min(only_a, only_b)
        tail = sum(math.comb(discordant, i) for i in range(smaller + 1)) / 2**discordant
        return McNemar(only_a, only_b, float(smaller), min(1.0, 2 * tail), True)
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    return McNemar(only_a, only_b, statistic, math.erfc(math.sqrt(statistic / 2)), False)  # chi-square, 1 dof


def _two_sided_p(draws: np.ndarray) -> float:
    """Twice the share of bootstrap differences on the far side of zero (at least 1/resamples)."""
    below = float((draws <= 0).mean())
    above = float((draws >= 0).mean())
    return min(1.0, max(2 * min(below, above), 1.0 / len(draws)))
