"""How many more labelled test examples would settle a close call, from the comparison that decides it.

A pair's interval is d x se wide on each side (d the simultaneous critical value of the rung behind,
harness/metrics/simultaneous.py), and se shrinks as 1 / sqrt(n) while the rate at which the two rungs
disagree holds. So:

- to settle the observed difference (declare it with 80 % power if it is the true one), the test set
  needs n' = n x ((d + z_0.8) x se / |difference|)^2 examples;
- to see any difference of `decision.margin` (the MDE down to the margin), n'' = n x (MDE / margin)^2.

For a 0/1 metric, se comes from the examples on which the rungs disagree (McNemar's discordant pairs):
two rungs 0.03 apart that disagree on 10 examples need far fewer than two that disagree on 70. Both are
planning figures: they assume the observed difference and disagreement rate hold.
"""

from __future__ import annotations

import math

from harness.metrics.simultaneous import PairInterval


def examples_to_settle(gap: PairInterval) -> int | None:
    """More test examples (beyond the n answered) to settle the observed difference; None if it cannot tell."""
    if gap.n == 0 or gap.difference == 0 or gap.mde != gap.mde or gap.standard_error == 0:
        return None
    needed = math.ceil(gap.n * (gap.mde / abs(gap.difference)) ** 2)
    return max(needed - gap.n, 1)


def examples_for_margin(gap: PairInterval, margin: float) -> int | None:
    """More test examples for the MDE to come down to `margin`; None if it is there or cannot be told."""
    if gap.n == 0 or margin <= 0 or gap.mde != gap.mde or gap.mde <= margin:
        return None
    return max(math.ceil(gap.n * (gap.mde / margin) ** 2) - gap.n, 1)
