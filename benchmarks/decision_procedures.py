"""The comparison procedures the recommendation used before MCB, kept as rows of benchmarks/decision_sim.py.

Each takes the rungs' per-example 0/1 answers (in ladder order) and returns the set of rungs it finds
clearly worse than the data-chosen best; the ladder policy then ships the first rung not in that set.

- holm: each rung against the best by McNemar's test, Holm's step-down over the m comparisons, and the
  paired percentile interval below zero (what advisor/decision/decide.py did from 2bdf32a to issue 31);
- max_t: a one-sided max-T step-down (Westfall and Young) over the paired bootstrap with the best held
  fixed in every resample (tried in 645fb2b and withdrawn in 17d8c3f: it does not see the selection).
"""

from __future__ import annotations

import numpy as np

from harness.metrics.bootstrap import bootstrap_indices
from harness.metrics.comparison import mcnemar
from harness.metrics.measurement import Measurement


def holm_beaten(correct: list[np.ndarray], measurement: Measurement) -> set[int]:
    """Holm's step-down against the best (McNemar p, paired 95 % interval below zero, gap over tolerance)."""
    values = [float(c.mean()) for c in correct]
    best = int(np.argmax(values))
    others = [i for i in range(len(correct)) if i != best]
    indices = bootstrap_indices(len(correct[0]), measurement.resamples, measurement.seed)
    alpha = 1 - measurement.confidence
    p_values = {i: mcnemar(correct[i], correct[best]).p_value for i in others}
    beaten: set[int] = set()
    for rank, i in enumerate(sorted(others, key=lambda j: p_values[j])):
        draws = correct[i][indices].mean(axis=1) - correct[best][indices].mean(axis=1)
        high = float(np.quantile(draws, 1 - alpha / 2))
        behind = values[best] - values[i]
        if not (p_values[i] < alpha / (len(others) - rank) and high < 0 and behind > measurement.tolerance):
            break
        beaten.add(i)
    return beaten


def max_t_beaten(correct: list[np.ndarray], measurement: Measurement) -> set[int]:
    """One-sided max-T step-down over the paired bootstrap, the best held fixed (Westfall and Young)."""
    values = np.array([float(c.mean()) for c in correct])
    best = int(np.argmax(values))
    others = [i for i in range(len(correct)) if i != best]
    indices = bootstrap_indices(len(correct[0]), measurement.resamples, measurement.seed)
    lead = np.array([values[best] - values[i] for i in others])
    draws = np.stack([correct[best][indices].mean(axis=1) - correct[i][indices].mean(axis=1) for i in others], 1)
    se = draws.std(axis=0, ddof=1)
    se = np.where(se > 0, se, np.inf)
    observed = lead / se
    centred = (draws - lead) / se
    order = np.argsort(-observed)
    adjusted = np.ones(len(others))
    running = 0.0
    for step, position in enumerate(order):
        rest = order[step:]
        p = float((centred[:, rest].max(axis=1) >= observed[position]).mean())
        running = max(running, p)
        adjusted[position] = running
    alpha = 1 - measurement.confidence
    beaten = set()
    for k, i in enumerate(others):
        exact = mcnemar(correct[i], correct[best]).p_value / 2
        if adjusted[k] < alpha and exact < alpha and lead[k] > measurement.tolerance:
            beaten.add(i)
    return beaten
