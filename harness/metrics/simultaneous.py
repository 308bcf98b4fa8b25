"""Multiple comparisons with the best (Hsu's MCB), paired by test example.

Every rung answered the same test examples. The recommendation asks, for each rung i, "is some other
rung clearly better than i?" and keeps the rungs for which the answer is no. The best rung is picked
by the same data, so these are many comparisons at once, and holding the data-chosen best fixed while
resampling (a max-T step-down) shipped a step up in 8-9 % of simulated all-equal ladders. MCB needs no
chosen best: every rung is taken in turn as the control, and its critical value d_i is the
(confidence) quantile of

    max over j != i of  (m_j - m_i) / se_ij

when rung i is as good as the rest (m the metric, se_ij the standard error of m_j - m_i). That is a
one-sided Dunnett critical value with i as the control, with the real correlation between the
comparisons (they share i's answers) instead of Bonferroni's worst case. Rung i is clearly beaten by j
when m_j - m_i > d_i x se_ij; the statements hold together, for whichever rung turns out best, with
probability at least `confidence` (Hsu 1996, ch. 4).

For a metric that is a mean over examples (accuracy, exact match, token F1), that null distribution comes
from permuting the rungs' answers within each example, and se_ij is the null-restricted error (McNemar's
for 0/1 answers), which McNemar's exact test guards when few examples differ. For other metrics
(macro-F1, field F1) it comes from a studentized bootstrap of the examples, centred on the observed
differences (measured slightly liberal: benchmarks/decision_sim.py).

The interval shown for a pair is m_a - m_b +/- d x se_ab, d the critical value of the rung behind: it
excludes zero exactly when the rung behind is clearly beaten by the other, so the words and the interval
beside them cannot disagree. The minimum detectable difference (MDE) of a pair is (d + z_power) x se_ab:
a true gap that size is declared with the power asked for (80 % by default) at this n and disagreement.

When no resample moves the difference (se = 0: every differing example moved the same way, as when a
test set holds one class and a metric like macro-F1 is scored), the exact sign test on the examples
whose answers differ decides instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from harness.metrics.bootstrap import bootstrap_indices
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement

Statistic = Callable[[np.ndarray], np.ndarray]  # (k, n) index rows -> k metric values
POWER = 0.8
EXACT_UP_TO = 24  # discordant examples up to which McNemar's exact test guards the normal one (as McNemar's own)


@dataclass(frozen=True)
class PairInterval:
    """metric(a) - metric(b), its simultaneous interval, and the smallest difference it could have seen."""

    difference: float
    ci_low: float
    ci_high: float
    critical: float  # the critical value of the rung behind (its one-sided Dunnett quantile)
    standard_error: float
    mde: float  # NaN when the bootstrap cannot tell (no example varies the difference)
    n: int
    differing: int  # examples on which the two rungs' answers differ

    def clearly_positive(self) -> bool:
        """a is clearly better than b: the whole interval lies above zero."""
        return self.ci_low > 0

    def clearly_negative(self) -> bool:
        """a is clearly worse than b: the whole interval lies below zero."""
        return self.ci_high < 0


@dataclass(frozen=True)
class Simultaneous:
    """Every rung's metric, the bootstrap's per-control critical values and pairwise standard errors."""

    values: np.ndarray  # (R,) metric of each rung on the data
    critical: np.ndarray  # (R,) one-sided critical value with rung i as the control
    standard_errors: np.ndarray  # (R, R) se of m_j - m_i
    differing: np.ndarray  # (R, R) examples on which the two rungs' answers differ
    n: int
    confidence: float
    exact_z: np.ndarray  # (R, R) McNemar's exact one-sided test on the z scale (inf: none)
    upward: bool = False  # each rung compared only with those after it (the ladder's order)

    def pair(self, a: int, b: int) -> PairInterval:
        """metric(a) - metric(b) with the interval that decides whether one clearly beats the other."""
        difference = float(self.values[a] - self.values[b])
        if self.upward:  # the pair belongs to the family of the earlier rung: "is the later one better?"
            behind = min(a, b)
        else:
            behind = a if difference < 0 or (difference == 0 and self.critical[a] >= self.critical[b]) else b
        se = float(self.standard_errors[a, b])
        critical = float(self.critical[behind])
        differing = int(self.differing[a, b])
        if se > 0:
            z_exact = float(self.exact_z[a, b])
            if z_exact <= critical < abs(difference) / se:  # the normal test passes, the exact one does not:
                se = abs(difference) / critical  # the interval reaches zero, as the exact test's verdict says
            half = critical * se
            mde = (critical + NormalDist().inv_cdf(POWER)) * se
            return PairInterval(difference, difference - half, difference + half, critical, se, mde, self.n, differing)
        if difference != 0 and _sign_test_clear(differing, self.confidence):
            return PairInterval(difference, difference, difference, critical, 0.0, 0.0, self.n, differing)
        low, high = min(difference, 0.0), max(difference, 0.0)
        return PairInterval(difference, low, high, critical, 0.0, math.nan, self.n, differing)


def simultaneous(
    statistics: Sequence[Statistic],
    answers: Sequence[Sequence[object]],
    n: int,
    measurement: Measurement = DEFAULT_MEASUREMENT,
    *,
    extra_variance: Sequence[float] = (),
    per_example: Sequence[np.ndarray] | None = None,
    upward: bool = False,
) -> Simultaneous:
    """MCB over rungs given as statistics of resampled example indices, on the same n examples.

    `answers` holds each rung's per-example answer, to count the examples on which two rungs differ.
    `extra_variance` (per rung) is randomness the examples do not show, such as how much a tuned rung's
    metric moves between training seeds (its seeds' variance over their count): it widens every interval
    of that rung's pairs.
    `per_example` (per rung, when the metric is a mean of per-example values): the critical values come
    from permuting the rungs' answers within each example, and the statistics are McNemar-type (below).
    Otherwise (macro-F1, field F1) they come from the studentized bootstrap.
    `upward`: the rungs come in the ladder's order and each is compared only with the rungs after it, the
    one question the ladder's pick asks of it ("is a rung above it clearly better?"): fewer comparisons per
    rung, so a smaller critical value for every rung but the first (whose family is everything above it
    either way). A pair's interval is then the earlier rung's.
    """
    count = len(statistics)
    everything = np.arange(n)[None, :]
    values = np.array([float(statistic(everything)[0]) for statistic in statistics])
    single = NormalDist().inv_cdf(measurement.confidence)
    if per_example is not None:
        matrix = np.stack([np.asarray(v, dtype=np.float64) for v in per_example])  # (R, n)
        se = _null_errors(matrix)
        studentized = _permuted_studentized(matrix, measurement)
        exact = _exact_z(matrix, values)
    else:
        se, studentized = _bootstrap_studentized(statistics, values, n, measurement)
        exact = np.full((count, count), np.inf)
    compared = ~np.eye(count, dtype=bool)
    if upward:
        compared = np.triu(compared)
    largest = np.where(compared[None, :, :], studentized, -np.inf).max(axis=2)  # (resamples, R)
    # a simultaneous critical value is never below one comparison's (a resampling's can be, when few
    # examples differ and every resample moves them the same way)
    critical = np.full(count, single)
    for i in range(count):
        finite = largest[:, i][np.isfinite(largest[:, i])]
        if len(finite):
            critical[i] = max(single, float(np.quantile(finite, measurement.confidence)))
    keys = [list(rung) for rung in answers]
    differing = np.array([[sum(x != y for x, y in zip(a, b, strict=True)) for b in keys] for a in keys])
    extra = np.asarray(extra_variance, dtype=np.float64) if len(extra_variance) else np.zeros(count)
    usable = se > 1e-12
    total = np.sqrt(np.where(usable, se, 0.0) ** 2 + extra[:, None] + extra[None, :])
    np.fill_diagonal(total, 0.0)
    return Simultaneous(values, critical, total, differing, n, measurement.confidence, exact, upward)


def _null_errors(matrix: np.ndarray) -> np.ndarray:
    """(R, R): the null-restricted standard error of m_j - m_i, sqrt(mean(d^2) / n) over the per-example
    differences d. For 0/1 answers it is sqrt(b + c) / n, McNemar's: an interval excludes zero exactly when
    McNemar's z passes the critical value, and a few discordant examples that agree cannot look decisive (a
    centred error shrinks when they do)."""
    n = matrix.shape[1]
    squares = (matrix**2).mean(axis=1)
    products = matrix @ matrix.T / n
    return np.sqrt(np.maximum(squares[:, None] + squares[None, :] - 2 * products, 0.0) / n)


def _permuted_studentized(matrix: np.ndarray, measurement: Measurement, chunk: int = 250) -> np.ndarray:
    """(P, R, R): for each permutation of the rungs' answers within every example, (m_j - m_i) / se_ij.

    Under "these rungs are equally good" (their answers exchangeable per example) every permutation is as
    likely as the data, so the quantile is exact: seven equal rungs lost the lowest one in 4.3 % and 5.0 %
    of simulated ladders at n = 100 and 300 (1,000 each), where the studentized bootstrap, centred on the
    observed differences, lost it in 6.4-6.8 % at n = 100 (its quantile of the maximum, 2.27, sits below
    the true 2.35).
    """
    count, n = matrix.shape
    rng = np.random.default_rng(measurement.seed)
    maxima = []
    for start in range(0, measurement.resamples, chunk):
        size = min(chunk, measurement.resamples - start)
        order = np.argsort(rng.random((size, n, count)), axis=2)
        permuted = np.take_along_axis(np.broadcast_to(matrix.T, (size, n, count)), order, axis=2)  # (P, n, R)
        means = permuted.mean(axis=1)  # (P, R)
        squares = (permuted**2).mean(axis=1)
        products = np.einsum("pnr,pns->prs", permuted, permuted) / n
        variance = np.maximum(squares[:, :, None] + squares[:, None, :] - 2 * products, 0.0) / n
        differences = means[:, None, :] - means[:, :, None]  # [p, i, j] = m_j - m_i
        usable = variance > 1e-24
        usable[:, np.arange(count), np.arange(count)] = False
        studentized = np.where(usable, differences / np.sqrt(np.where(usable, variance, 1.0)), -np.inf)
        maxima.append(studentized)
    return np.concatenate(maxima)


def _bootstrap_studentized(
    statistics: Sequence[Statistic], values: np.ndarray, n: int, measurement: Measurement
) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap standard error of m_j - m_i (R, R), and per resample ((m*_j - m*_i) - (m_j - m_i)) / se_ij
    (B, R, R): for metrics that are not means of examples."""
    count = len(statistics)
    indices = bootstrap_indices(n, measurement.resamples, measurement.seed)
    draws = np.stack([statistic(indices) for statistic in statistics], axis=1)  # (B, R)
    observed = values[None, :] - values[:, None]
    resampled = draws[:, None, :] - draws[:, :, None]
    se = resampled.std(axis=0, ddof=1) if len(indices) > 1 else np.zeros((count, count))
    usable = se > 1e-12
    np.fill_diagonal(usable, False)
    studentized = np.where(usable, (resampled - observed) / np.where(usable, se, 1.0), -np.inf)
    return np.where(usable, se, 0.0), studentized


def _exact_z(matrix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For 0/1 answers, McNemar's exact one-sided test of each pair on the z scale (inf elsewhere): three
    discordant examples that all favour one rung give a normal z of 1.73 but an exact p of 0.125 (z 1.15)."""
    count = len(matrix)
    errors = np.full((count, count), np.inf)
    answers = list(matrix)
    if not np.isin(matrix, (0.0, 1.0)).all():
        return errors
    for i in range(count):
        for j in range(i + 1, count):
            only_i = int(((answers[i] == 1) & (answers[j] == 0)).sum())
            only_j = int(((answers[j] == 1) & (answers[i] == 0)).sum())
            difference = abs(float(values[j] - values[i]))
            if difference == 0 or not 0 < only_i + only_j <= EXACT_UP_TO:
                continue
            tail = _binomial_tail(max(only_i, only_j), only_i + only_j)
            errors[i, j] = errors[j, i] = -NormalDist().inv_cdf(max(tail, 1e-300)) if tail < 0.5 else 0.0
    return errors


def _binomial_tail(at_least: int, trials: int) -> float:
    """P(X >= at_least) for X ~ Binomial(trials, 1/2)."""
    return sum(math.comb(trials, k) for k in range(at_least, trials + 1)) / 2**trials


def _sign_test_clear(differing: int, confidence: float) -> bool:
    """Every one of `differing` examples moved the same way: the exact two-sided sign test's verdict."""
    return differing > 0 and 2 * 0.5**differing < 1 - confidence
