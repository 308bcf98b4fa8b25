"""Metrics the task names in `evaluation.metrics`: shipped ones by name, the user's own by file path.

Each is an `evaluate` module computed on (predictions, references). Its interval is a percentile
bootstrap that recomputes the module on each resample, so it uses fewer resamples than the
vectorised built-in metrics (the module may be arbitrary Python; it runs only because the user
named its file). Each is tried on the task's own targets before the run, so a module that cannot
load or compute fails at `advisor check`, not after the model has answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.metrics.bootstrap import Estimate, bootstrap_indices
from harness.metrics.loading import load_metric
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.types import Example, Record

MODULE_RESAMPLES = 200
CHECK_ROWS = 4  # targets a metric is tried on before the run (as both prediction and reference)


def check_extra_metrics(names: Sequence[str], examples: Sequence[Example], task_dir: Path) -> None:
    """Each named metric loads and computes on a few of the task's own targets, before any model answers."""
    targets = [e.target for e in examples[:CHECK_ROWS]]
    for name in names:
        try:
            module = load_metric(name, task_dir=task_dir)
        except InputError as error:
            raise InputError(f"evaluation.metrics: {error}") from None
        if targets:
            _compute(module, targets, targets, _label(name))


def extra_metrics(
    names: Sequence[str], records: Sequence[Record], task_dir: Path, measurement: Measurement = DEFAULT_MEASUREMENT
) -> dict[str, Estimate]:
    """Every named metric's values (one per number it returns) with bootstrap intervals."""
    results: dict[str, Estimate] = {}
    if not records:
        return results
    predictions = [_prediction(r) for r in records]
    references = [r.example.target for r in records]
    for name in names:
        module = load_metric(name, task_dir=task_dir)
        label = _label(name)
        observed = _compute(module, predictions, references, label)
        draws: dict[str, list[float]] = {key: [] for key in observed}
        for rows in bootstrap_indices(len(records), min(MODULE_RESAMPLES, measurement.resamples), measurement.seed):
            values = _compute(module, [predictions[i] for i in rows], [references[i] for i in rows], label)
            for key in observed:
                draws[key].append(values.get(key, float("nan")))
        for key, value in observed.items():
            low, high = np.nanquantile(draws[key], [0.025, 0.975])
            shown = label if len(observed) == 1 else f"{label}.{key}"
            results[shown] = Estimate(value, float(low), float(high))
    return results


def _label(name: str) -> str:
    return Path(name).stem if name.endswith(".py") else name


def _prediction(record: Record) -> str:
    predicted = record.score.detail.get("prediction")
    return predicted if isinstance(predicted, str) else record.output.text


def _compute(module: object, predictions: list[str], references: list[str], label: str) -> dict[str, float]:
    try:
        raw = module.compute(predictions=predictions, references=references)  # type: ignore[attr-defined]
    except Exception as error:  # a user's module failing is their input's problem, said in one line
        message = " ".join(str(error).split()) or type(error).__name__
        raise InputError(f"evaluation.metrics: '{label}' failed on this task's outputs: {message}") from None
    if not isinstance(raw, dict):
        raise InputError(f"evaluation.metrics: '{label}' returned {type(raw).__name__}; expected a dict of numbers")
    return {
        key: float(value)
        for key, value in raw.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
