"""Field-level JSON extraction scores as an `evaluate` metric script, shipped with Ladder (loads offline)."""

from __future__ import annotations

import evaluate

from harness.metrics.module_support import metric_info, text_pairs
from harness.metrics.text_metrics import field_counts

_DESCRIPTION = """
JSON fields: how well the JSON object in each output matches the gold object, field by field. A
field is a (dotted path, normalised value) pair; values are compared stripped, case-folded and with
single spaces. Precision, recall and F1 are micro-averaged: the counts are summed over all examples
first. An output with no parsable JSON object is invalid and misses every gold field. All values are
on a 0-1 scale.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): each model output (prose and ```json fences around the object are fine).
    references (list of str): each gold object as JSON text (json.dumps a dict first).
Returns:
    valid_rate (float): the share of outputs holding a parsable JSON object.
    precision (float): summed true positives / (true + false positives); NaN when no field was predicted.
    recall (float): summed true positives / (true positives + false negatives); NaN when there are no gold fields.
    f1 (float): micro F1 = 2TP / (2TP + FP + FN); NaN when there are no fields at all.
    exact_match (float): the share of outputs whose fields equal the gold fields exactly.
Examples:
    >>> json_fields.compute(predictions=['{"a": 1, "b": "y", "c": 2}'], references=['{"a": 1, "b": "x"}'])
    {'valid_rate': 1.0, 'precision': 0.3333333333333333, 'recall': 0.5, 'f1': 0.4, 'exact_match': 0.0}
"""

_CITATION = ""


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


class JsonFields(evaluate.Metric):
    """Validity, field precision / recall / micro-F1 and exact-match rate of JSON outputs."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, text_pairs())

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        counts = [field_counts(p, r) for p, r in zip(predictions, references, strict=True)]
        tp = sum(c.true_positive for c in counts)
        fp = sum(c.false_positive for c in counts)
        fn = sum(c.false_negative for c in counts)
        return {
            "valid_rate": _ratio(sum(c.valid for c in counts), len(counts)),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "exact_match": _ratio(sum(c.exact for c in counts), len(counts)),
        }
