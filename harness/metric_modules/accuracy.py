"""Accuracy as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import datasets
import evaluate

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
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            ],
        )

    def _compute(self, predictions: list[object], references: list[object]) -> dict[str, float]:
        if not references:
            return {"accuracy": float("nan")}
        hits = sum(p not in (None, "") and p == r for p, r in zip(predictions, references, strict=True))
        return {"accuracy": hits / len(references)}
