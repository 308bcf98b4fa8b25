"""Macro-F1 as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import evaluate
import numpy as np

from harness.metrics.bootstrap import macro_f1_rows
from harness.metrics.module_support import labels, metric_info

_DESCRIPTION = """
Macro-F1: the unweighted mean of per-class F1 over every class that occurs as a reference or a
prediction (scikit-learn's f1_score(average="macro") on those labels), on a 0-1 scale. A missing
prediction ("" or None: no label read from the output) counts against its true class and for no
class.
It is the same computation as the point value of Ladder's bootstrapped macro-F1.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or int): the label read from each output; "" (or None) when none was read.
    references (list of str or int): the gold label of each example.
Returns:
    macro_f1 (float): in [0, 1]; NaN for no examples.
Examples:
    >>> macro_f1.compute(predictions=["a", "a", "b"], references=["a", "b", "b"])
    {'macro_f1': 0.6666666666666666}
"""

_CITATION = ""


class MacroF1(evaluate.Metric):
    """Unweighted mean of per-class F1."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, labels())

    def _compute(self, predictions: list[object], references: list[object]) -> dict[str, float]:
        if not references:
            return {"macro_f1": float("nan")}
        named = [None if p in (None, "") else p for p in predictions]
        classes = sorted({*references, *(p for p in named if p is not None)}, key=str)
        code = {label: i for i, label in enumerate(classes)}
        true = np.array([[code[r] for r in references]], dtype=np.int64)
        pred = np.array([[-1 if p is None else code[p] for p in named]], dtype=np.int64)
        return {"macro_f1": float(macro_f1_rows(true, pred, len(classes))[0])}
