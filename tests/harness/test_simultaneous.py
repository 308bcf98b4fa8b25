"""Multiple comparisons with the best: critical values, McNemar's exact guard, the degenerate sign test."""

from __future__ import annotations

import numpy as np

from harness.metrics.measurement import Measurement
from harness.metrics.simultaneous import simultaneous

MEASUREMENT = Measurement(resamples=1000)


def family(*answers: np.ndarray):
    values = [a.astype(np.float64) for a in answers]
    statistics = [lambda idx, v=v: v[idx].mean(axis=1) for v in values]
    return simultaneous(statistics, [list(v) for v in values], len(values[0]), MEASUREMENT, per_example=values)


def test_the_critical_value_grows_with_the_rungs_compared_at_once_but_not_past_bonferroni() -> None:
    rng = np.random.default_rng(0)
    rungs = [rng.random(300) < 0.7 for _ in range(7)]
    two = family(*rungs[:2]).critical
    seven = family(*rungs).critical
    assert np.all(two >= 1.644) and np.all(two < 1.8)  # one comparison: about the one-sided 95 % quantile
    assert np.all(seven > 2.0) and np.all(seven < 2.45)  # six: Dunnett's 2.29 at correlation 0.5, under 2.39


def test_three_discordant_examples_that_agree_are_not_decisive() -> None:
    """Normal z = 3 / sqrt(3) = 1.73 passes 1.645; McNemar's exact one-sided p = 0.125 does not."""
    a = np.zeros(200)
    b = a.copy()
    b[:3] = 1
    pair = family(a, b).pair(1, 0)
    assert pair.difference == 0.015 and pair.ci_low <= 0 and not pair.clearly_positive()
    b[:12] = 1  # twelve: exact p = 0.00024
    assert family(a, b).pair(1, 0).clearly_positive()


def test_a_difference_no_resample_moves_is_decided_by_the_sign_test() -> None:
    """Every example favours one rung and the statistic gives no spread (a one-class macro-F1)."""
    ones, zeros = np.ones(40), np.zeros(40)
    statistics = [lambda idx: np.ones(len(idx)), lambda idx: np.zeros(len(idx))]
    clear = simultaneous(statistics, [list(ones), list(zeros)], 40, MEASUREMENT).pair(1, 0)
    assert clear.clearly_negative() and (clear.ci_low, clear.ci_high) == (-1.0, -1.0)
    few = simultaneous(statistics, [[1, 1, 1, 1], [0, 0, 0, 0]], 4, MEASUREMENT).pair(1, 0)
    assert not few.clearly_negative() and few.ci_high == 0.0  # four examples: sign test p = 0.125


def test_compared_only_upward_each_rung_has_fewer_comparisons_and_the_first_as_many() -> None:
    rng = np.random.default_rng(1)
    values = [(rng.random(300) < 0.7).astype(np.float64) for _ in range(7)]
    statistics = [lambda idx, v=v: v[idx].mean(axis=1) for v in values]
    answers = [list(v) for v in values]
    full = simultaneous(statistics, answers, 300, MEASUREMENT, per_example=values).critical
    upward = simultaneous(statistics, answers, 300, MEASUREMENT, per_example=values, upward=True).critical
    assert upward[0] == full[0]  # the first rung is compared with every other either way
    assert upward[4] < full[4] and upward[-1] < 1.65  # the last is compared with nothing above it
