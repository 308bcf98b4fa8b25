"""How many more labelled test examples would settle a close call, from the paired data that decides it.

For a 0/1 metric the comparison is decided by the examples on which the two rungs disagree
(McNemar's discordant pairs): each example contributes d_i = correct_a - correct_b in {-1, 0, +1},
and the paired test's standard error at n examples is sd(d) / sqrt(n). The n that makes the
observed mean difference significant at the confidence level with 80 % power (if the observed
difference is the true one) is ((z_conf + z_power) x sd(d) / |mean d|)^2. For a metric that is not a
mean of 0/1 values (macro-F1, token F1), the paired interval's own width stands in for sd(d):
n' = n x ((z_conf + z_power) / z_conf x half-width / |difference|)^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from harness.metrics.comparison import PairedDifference

POWER = 0.8


def examples_to_settle(
    paired: PairedDifference,
    confidence: float,
    correct_a: Sequence[bool] | None = None,
    correct_b: Sequence[bool] | None = None,
) -> int | None:
    """More test examples (beyond the n already answered) to settle the comparison; None if it cannot tell."""
    if paired.n == 0 or paired.difference == 0 or paired.difference != paired.difference:
        return None
    z_conf = NormalDist().inv_cdf(0.5 + confidence / 2)
    z_power = NormalDist().inv_cdf(POWER)
    if correct_a is not None and correct_b is not None:
        diffs = [int(a) - int(b) for a, b in zip(correct_a, correct_b, strict=True)]
        mean = sum(diffs) / len(diffs)
        variance = sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1)
        if mean == 0 or variance == 0:
            return None
        needed = math.ceil(((z_conf + z_power) * math.sqrt(variance) / abs(mean)) ** 2)
    else:
        half = (paired.ci_high - paired.ci_low) / 2
        if half <= 0:
            return None
        needed = math.ceil(paired.n * ((z_conf + z_power) / z_conf * half / abs(paired.difference)) ** 2)
    return max(needed - paired.n, 1)
