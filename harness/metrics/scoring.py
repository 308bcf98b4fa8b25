"""Scorers: judging one output against its example, the same way for every rung."""

from __future__ import annotations

import string
from collections.abc import Sequence

from harness.data.labels import match_label
from harness.inference.answer_text import normalize_answer, token_f1
from harness.metric_types import Scorer
from harness.metrics.text_metrics import chrf, field_counts, rouge_l
from harness.task_types import get_task_type
from harness.types import Example, Output, Score

_PUNCTUATION = set(string.punctuation)


def classification_scorer(labels: Sequence[str]) -> Scorer:
    """Correct when the label read from the output is the target; no label read is wrong."""
    allowed = set(labels)

    def score(example: Example, output: Output) -> Score:
        prediction = output.text if output.text in allowed else match_label(output.text, labels)
        correct = prediction == example.target
        return Score(value=1.0 if correct else 0.0, correct=correct, detail={"prediction": prediction})

    return score


def qa_scorer() -> Scorer:
    """Exact match and token F1 against the best of the accepted answers (SQuAD v1.1 rules)."""

    def score(example: Example, output: Output) -> Score:
        answers = example.meta.get("answers") or [example.target]
        prediction = output.text.strip().split("\n")[0]
        normal = normalize_answer(prediction)
        exact = max(normal == normalize_answer(a) for a in answers)
        f1 = max(token_f1(prediction, a) for a in answers)
        # lenient: a chatty model that wraps the right answer in a sentence still "contains" it
        contains = any(f" {normalize_answer(a)} " in f" {normal} " for a in answers if normalize_answer(a))
        return Score(value=f1, correct=bool(exact), detail={"prediction": prediction, "contains_answer": contains})

    return score


def extraction_scorer() -> Scorer:
    """Field-level comparison of the JSON object in the output with the gold object.

    value: this example's field F1 (1 when both have no fields); correct: every field right and
    nothing extra. The counts are kept so the metrics can sum them over examples (micro F1).
    """

    def score(example: Example, output: Output) -> Score:
        counts = field_counts(output.text, example.target)
        tp, fp, fn = counts.true_positive, counts.false_positive, counts.false_negative
        f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else float(counts.valid)
        detail = {"valid": counts.valid, "tp": tp, "fp": fp, "fn": fn}
        return Score(value=f1, correct=counts.exact, detail=detail)

    return score


def generation_scorer() -> Scorer:
    """ROUGE-L (the value) and chrF against the reference; correct when the normalised texts are equal."""

    def score(example: Example, output: Output) -> Score:
        value = rouge_l(output.text, example.target)
        exact = normalize_answer(output.text) == normalize_answer(example.target)
        return Score(value=value, correct=exact, detail={"rouge_l": value, "chrf": chrf(output.text, example.target)})

    return score


def scorer_for(task_type: str, labels: Sequence[str]) -> Scorer:
    """The scorer of a task type (its registration in harness/task_kinds/)."""
    return get_task_type(task_type).scorer(labels)
