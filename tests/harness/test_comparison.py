"""Paired comparisons: the vectorised bootstrap against a slow loop, McNemar by hand, CI coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.bootstrap import accuracy_estimate, bootstrap_indices, macro_f1_rows
from harness.metrics.comparison import mcnemar, paired_bootstrap, paired_mean_difference
from harness.metrics.measurement import Measurement


def test_paired_bootstrap_matches_a_slow_reference() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(57), rng.random(57)
    fast = paired_mean_difference(a, b, Measurement(resamples=300, seed=11))
    draws = []
    for row in bootstrap_indices(57, 300, 11):  # the same draws, one resample at a time
        draws.append(sum(a[i] for i in row) / 57 - sum(b[i] for i in row) / 57)
    low, high = np.quantile(draws, [0.025, 0.975])
    assert fast.difference == pytest.approx(a.mean() - b.mean())
    assert (fast.ci_low, fast.ci_high) == pytest.approx((low, high))
    below = sum(d <= 0 for d in draws) / 300
    above = sum(d >= 0 for d in draws) / 300
    assert fast.p_value == pytest.approx(max(min(1.0, 2 * min(below, above)), 1 / 300))


def test_paired_bootstrap_of_macro_f1_uses_the_same_rows_for_both() -> None:
    true = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    a, b = true.copy(), np.array([0, 1, 2, 0, 1, 2, 0, 0])
    result = paired_bootstrap(
        lambda idx: macro_f1_rows(true[idx], a[idx], 3),
        lambda idx: macro_f1_rows(true[idx], b[idx], 3),
        len(true),
        Measurement(resamples=500),
    )
    assert result.difference > 0 and result.ci_low >= 0  # A is never worse on any resample


def test_pairing_gives_a_tighter_interval_than_independent_intervals() -> None:
    rng = np.random.default_rng(0)
    shared = rng.random(300) < 0.6
    better = shared | (rng.random(300) < 0.1)  # B's answers plus a few more right
    paired = paired_mean_difference(better.astype(float), shared.astype(float))
    separate_a, separate_b = accuracy_estimate(better), accuracy_estimate(shared)
    assert paired.clearly_positive()
    assert separate_a.ci_low < separate_b.ci_high  # the separate intervals overlap: they cannot tell
    assert paired.ci_high - paired.ci_low < (separate_a.ci_high - separate_a.ci_low)


def test_mcnemar_exact_and_chi_square_against_hand_values() -> None:
    a = [True] * 10 + [False] * 2 + [True] * 5
    b = [False] * 10 + [True] * 2 + [True] * 5
    exact = mcnemar(a, b)
    assert (exact.only_a, exact.only_b, exact.exact) == (10, 2, True)
    assert exact.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)
    a = [True] * 30 + [False] * 10
    b = [False] * 30 + [True] * 10
    chi = mcnemar(a, b)
    assert not chi.exact and chi.statistic == pytest.approx(19**2 / 40)
    assert chi.p_value == pytest.approx(0.0026636, rel=1e-3)  # scipy.stats.chi2.sf(9.025, 1)
    assert mcnemar([True, False], [True, False]).p_value == 1.0


def test_paired_inputs_must_have_the_same_examples() -> None:
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])
    with pytest.raises(ValueError):
        paired_mean_difference([1.0], [1.0, 0.0])


@pytest.mark.parametrize("rate,n", [(0.7, 150), (0.2, 300)])
def test_the_95_percent_interval_covers_the_truth_about_95_percent_of_the_time(rate: float, n: int) -> None:
    rng = np.random.default_rng(12345)
    simulations = 500
    covered = 0
    for trial in range(simulations):
        sample = rng.random(n) < rate
        estimate = accuracy_estimate(sample, Measurement(seed=trial, resamples=1000))
        covered += estimate.ci_low <= rate <= estimate.ci_high
    assert 0.92 <= covered / simulations <= 0.98


def test_the_paired_difference_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(7)
    simulations, n, covered = 400, 200, 0
    for trial in range(simulations):
        a = rng.random(n) < 0.65
        b = np.where(rng.random(n) < 0.7, a, rng.random(n) < 0.55)  # correlated with A; true rate 0.62
        truth = 0.65 - (0.7 * 0.65 + 0.3 * 0.55)
        result = paired_mean_difference(a.astype(float), b.astype(float), Measurement(seed=trial, resamples=1000))
        covered += result.ci_low <= truth <= result.ci_high
    assert 0.92 <= covered / simulations <= 0.98
