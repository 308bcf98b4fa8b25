"""SQuAD exact match as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import evaluate

from harness.metrics.module_support import answer_lists, mean_per_example, metric_info
from harness.metrics.text_metrics import exact_match

_DESCRIPTION = """
Exact match with SQuAD v1.1 normalisation (lower case, no punctuation, no articles, single spaces):
the share of predictions equal to any of their accepted answers, on a 0-1 scale (SQuAD's own
script reports 0-100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the answer read from each output.
    references (list of str, or list of list of str): the accepted answer(s) of each example.
Returns:
    exact_match (float): in [0, 1]; NaN for no examples.
Examples:
    >>> exact_match.compute(predictions=["The Eiffel Tower!"], references=[["eiffel tower", "the tower"]])
    {'exact_match': 1.0}
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


class ExactMatch(evaluate.Metric):
    """The share of answers that equal an accepted answer after SQuAD normalisation."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, answer_lists())

    def _compute(self, predictions: list[str], references: list[str | list[str]]) -> dict[str, float]:
        return mean_per_example("exact_match", exact_match, predictions, references)
