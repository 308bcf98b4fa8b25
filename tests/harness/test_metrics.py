"""Metrics against hand-computed values and a slow reference; the bootstrap is seeded and sound."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.bootstrap import accuracy_estimate, bootstrap_indices, macro_f1_estimate, macro_f1_rows, percentile
from harness.metrics.measurement import Measurement


def reference_macro_f1(targets: list[str], predictions: list[str | None]) -> float:
    classes = sorted(set(targets) | {p for p in predictions if p is not None})
    scores = []
    for c in classes:
        tp = sum(t == c and p == c for t, p in zip(targets, predictions, strict=True))
        fp = sum(t != c and p == c for t, p in zip(targets, predictions, strict=True))
        fn = sum(t == c and p != c for t, p in zip(targets, predictions, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def test_accuracy_by_hand() -> None:
    estimate = accuracy_estimate([True, True, False, True])
    assert estimate.value == 0.75
    assert 0.0 <= estimate.ci_low <= 0.75 <= estimate.ci_high <= 1.0


def test_macro_f1_by_hand() -> None:
    # a: tp=1 fp=1 fn=1 -> 0.5 ; b: tp=1 fp=0 fn=1 -> 2/3 ; c: tp=0 fp=1 fn=0 -> 0
    targets = ["a", "a", "b", "b"]
    predictions = ["a", "c", "b", "a"]
    assert macro_f1_estimate(targets, predictions).value == pytest.approx((0.5 + 2 / 3 + 0) / 3)


def test_no_label_answers_count_against_the_true_class_only() -> None:
    assert macro_f1_estimate(["a", "b"], ["a", None]).value == pytest.approx((1.0 + 0.0) / 2)


def test_vectorised_macro_f1_equals_the_reference_on_random_data() -> None:
    rng = np.random.default_rng(7)
    labels = ["x", "y", "z", "w"]
    for _ in range(20):
        n = int(rng.integers(5, 60))
        targets = [labels[i] for i in rng.integers(0, 4, n)]
        predictions = [None if i == 4 else labels[i] for i in rng.integers(0, 5, n)]
        assert macro_f1_estimate(targets, predictions).value == pytest.approx(reference_macro_f1(targets, predictions))


def test_each_bootstrap_row_equals_the_reference_on_that_resample() -> None:
    rng = np.random.default_rng(1)
    true = rng.integers(0, 3, 30)
    pred = rng.integers(-1, 3, 30)
    idx = bootstrap_indices(30, 25, seed=2)
    rows = macro_f1_rows(true[idx], pred[idx], 3)
    names = ["a", "b", "c"]
    for row, sample in zip(rows, idx, strict=True):
        t = [names[i] for i in true[sample]]
        p = [names[i] if i >= 0 else None for i in pred[sample]]
        assert row == pytest.approx(reference_macro_f1(t, p))


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    correct = list(np.random.default_rng(0).random(200) < 0.7)
    assert accuracy_estimate(correct, Measurement(seed=5)) == accuracy_estimate(correct, Measurement(seed=5))
    assert (bootstrap_indices(200, 50, seed=5) == bootstrap_indices(200, 50, seed=5)).all()
    assert (bootstrap_indices(200, 50, seed=5) != bootstrap_indices(200, 50, seed=6)).any()


def test_the_interval_narrows_with_more_examples() -> None:
    rng = np.random.default_rng(3)
    small = accuracy_estimate(list(rng.random(50) < 0.7))
    large = accuracy_estimate(list(rng.random(2000) < 0.7))
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low) / 3


def test_percentile_of_nothing_is_nan() -> None:
    assert percentile([], 50) != percentile([], 50)
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
