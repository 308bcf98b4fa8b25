"""SQuAD exact match as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import datasets
import evaluate

from harness.text_metrics import exact_match

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
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions: list[str], references: list[str | list[str]]) -> dict[str, float]:
        if not references:
            return {"exact_match": float("nan")}
        hits = sum(exact_match(p, r) for p, r in zip(predictions, references, strict=True))
        return {"exact_match": hits / len(references)}
