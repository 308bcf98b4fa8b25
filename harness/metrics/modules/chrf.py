"""chrF as an `evaluate` metric script, shipped with Ladder so it loads offline by path."""

from __future__ import annotations

import evaluate

from harness.metrics.module_support import mean_per_example, metric_info, text_pairs
from harness.metrics.text_metrics import chrf

_DESCRIPTION = """
chrF: the character n-gram F-score (n up to 6, recall weighted by beta 2, no word n-grams) by
sacrebleu, computed per example and averaged, divided by 100 so it is on a 0-1 scale like every
other Ladder metric. The mean of sentence scores is not sacrebleu's corpus chrF, which pools the
n-gram statistics of all examples first.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): each model output.
    references (list of str): each reference text.
Returns:
    chrf (float): the mean per-example chrF / 100, in [0, 1]; NaN for no examples.
"""

_CITATION = r"""
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    pages = "392--395",
}
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""


class Chrf(evaluate.Metric):
    """Mean sentence-level chrF on a 0-1 scale."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, text_pairs(), ["https://github.com/mjpost/sacrebleu"]
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        return mean_per_example("chrf", chrf, predictions, references)
