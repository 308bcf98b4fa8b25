"""Accuracy as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import evaluate

from harness.metrics.module_support import labels, mean_per_example, metric_info

_DESCRIPTION = """
Accuracy: the share of predictions equal to their reference label, on a 0-1 scale. Labels are
strings (or integers); a missing prediction ("" or None: no label read
from the output) is wrong. Pass "" rather than None first: evaluate infers the column type from
the first row.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or int): the label read from each output; "" (or None) when none was read.
    references (list of str or int): the gold label of each example.
Returns:
    accuracy (float): correct / total, in [0, 1]; NaN for no examples.
Examples:
    >>> accuracy.compute(predictions=["a", "b", ""], references=["a", "a", "b"])
    {'accuracy': 0.3333333333333333}
"""

_CITATION = ""


class Accuracy(evaluate.Metric):
    """The share of exact label matches."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, labels())

    def _compute(self, predictions: list[object], references: list[object]) -> dict[str, float]:
        return mean_per_example("accuracy", lambda p, r: p not in (None, "") and p == r, predictions, references)
