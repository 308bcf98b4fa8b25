"""ROUGE-L as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import evaluate

from harness.metrics.module_support import mean_per_example, metric_info, text_pairs
from harness.metrics.text_metrics import rouge_l

_DESCRIPTION = """
ROUGE-L: the F-measure of the longest common subsequence of tokens between prediction and
reference, by Google's `rouge-score` package with the Porter stemmer, averaged over examples, on a
0-1 scale. Its tokenizer keeps only ASCII letters and digits, so text in other scripts scores 0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): each model output.
    references (list of str): each reference text.
Returns:
    rouge_l (float): the mean per-example ROUGE-L F-measure, in [0, 1]; NaN for no examples.
Examples:
    >>> rouge_l.compute(predictions=["the cat sat on the mat"], references=["the cat lay on the mat"])
    {'rouge_l': 0.8333333333333334}
"""

_CITATION = """
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    pages = "74--81",
}
"""


class RougeL(evaluate.Metric):
    """Mean sentence-level ROUGE-L F-measure."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            text_pairs(),
            ["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        return mean_per_example("rouge_l", rouge_l, predictions, references)
