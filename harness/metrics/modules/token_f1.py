"""SQuAD token F1 as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import evaluate

from harness.metrics.module_support import answer_lists, mean_per_example, metric_info
from harness.metrics.text_metrics import token_f1

_DESCRIPTION = """
Token F1 with SQuAD v1.1 normalisation: the F1 of the bag of tokens of the prediction against the
best of its accepted answers, averaged over examples, on a 0-1 scale (SQuAD's own script reports
0-100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the answer read from each output.
    references (list of str, or list of list of str): the accepted answer(s) of each example.
Returns:
    token_f1 (float): the mean per-example F1, in [0, 1]; NaN for no examples.
Examples:
    >>> token_f1.compute(predictions=["blue whale"], references=[["the blue whale shark"]])
    {'token_f1': 0.8}
"""

_CITATION = """
@inproceedings{rajpurkar-etal-2016-squad,
    title = "{SQ}u{AD}: 100,000+ Questions for Machine Comprehension of Text",
    author = "Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy",
    booktitle = "Proceedings of EMNLP 2016",
    year = "2016",
    pages = "2383--2392",
}
"""


class TokenF1(evaluate.Metric):
    """Mean SQuAD token F1 against the best accepted answer."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, answer_lists())

    def _compute(self, predictions: list[str], references: list[str | list[str]]) -> dict[str, float]:
        return mean_per_example("token_f1", token_f1, predictions, references)
