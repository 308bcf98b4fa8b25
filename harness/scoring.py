"""Scorers: judging one output against its example, the same way for every rung."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.labels import match_label
from harness.types import Example, Output, Score

Scorer = Callable[[Example, Output], Score]


def classification_scorer(labels: Sequence[str]) -> Scorer:
    """Correct when the label read from the output is the target; no label read is wrong."""
    allowed = set(labels)

    def score(example: Example, output: Output) -> Score:
        prediction = output.text if output.text in allowed else match_label(output.text, labels)
        correct = prediction == example.target
        return Score(value=1.0 if correct else 0.0, correct=correct, detail={"prediction": prediction})

    return score
