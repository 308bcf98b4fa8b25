"""Metric values with seeded 95% bootstrap confidence intervals, vectorised over resamples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the data and its percentile-bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) row indices drawn with replacement; the same seed gives the same draws."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    measurement: Measurement = DEFAULT_MEASUREMENT,
    *,
    confidence: float = 0.95,
) -> Estimate:
    """Percentile interval of `statistic`, which maps (k, n) index rows to k values at once."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    value = float(statistic(np.arange(n)[None, :])[0])
    draws = statistic(bootstrap_indices(n, measurement.resamples, measurement.seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return Estimate(value, float(low), float(high))


def accuracy_estimate(correct: Sequence[bool], measurement: Measurement = DEFAULT_MEASUREMENT) -> Estimate:
    """Share of correct answers, with its bootstrap interval."""
    hits = np.asarray(correct, dtype=np.float64)
    return bootstrap(lambda idx: hits[idx].mean(axis=1), len(hits), measurement)


def mean_estimate(values: Sequence[float], measurement: Measurement = DEFAULT_MEASUREMENT) -> Estimate:
    """The mean of per-example values (token F1, reciprocal rank), with its bootstrap interval."""
    data = np.asarray(values, dtype=np.float64)
    return bootstrap(lambda idx: data[idx].mean(axis=1), len(data), measurement)


def retrieval_ranks(gold: Sequence[Sequence[str]], retrieved: Sequence[Sequence[str]]) -> list[int | None]:
    """The 1-based rank of the first gold source among the retrieved ones, or None."""
    ranks: list[int | None] = []
    for wanted, got in zip(gold, retrieved, strict=True):
        hit = next((rank for rank, source in enumerate(got, start=1) if source in set(wanted)), None)
        ranks.append(hit)
    return ranks


def macro_f1_estimate(
    targets: Sequence[str],
    predictions: Sequence[str | None],
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> Estimate:
    """Unweighted mean of per-class F1 over the classes present, with its bootstrap interval.

    An answer that names no label (None) counts against its true class and for no class. A class
    is averaged in a resample when it occurs there as a target or a prediction (sklearn's default).
    """
    classes = sorted(set(targets) | {p for p in predictions if p is not None})
    code = {label: i for i, label in enumerate(classes)}
    true = np.array([code[t] for t in targets], dtype=np.int64)
    pred = np.array([code[p] if p is not None else -1 for p in predictions], dtype=np.int64)
    return bootstrap(lambda idx: macro_f1_rows(true[idx], pred[idx], len(classes)), len(true), measurement)


def macro_f1_rows(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of (k, n) class codes (prediction -1: no class)."""
    rows = true.shape[0]
    offset = (np.arange(rows) * n_classes)[:, None]
    size = rows * n_classes

    def counts(codes: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        valid = codes >= 0
        flat = (codes + offset)[valid]
        w = None if weight is None else weight[valid]
        return np.bincount(flat, weights=w, minlength=size).reshape(rows, n_classes)

    tp = counts(true, (true == pred).astype(np.float64))
    support = counts(true)
    predicted = counts(pred)
    denominator = support + predicted  # = 2TP + FP + FN
    present = denominator > 0
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=np.float64), where=present)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else float("nan")
