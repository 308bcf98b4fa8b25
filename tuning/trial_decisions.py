"""A trial's judgement decided in one process and obeyed in another.

The search's observer (the pruner, the relative budget) runs where the study is: rank 0 of a launch, or the
Ray driver. What it decided at an evaluation travels as one word to where the trial trains (the other ranks,
a Ray worker), which stops the trial there exactly as the observer would have stopped it.
"""

from __future__ import annotations

from typing import Literal

from tuning.judging import Evaluation
from tuning.loop import EnoughTraining, EvaluationObserver, Pruned

Decision = Literal["go", "prune", "enough"]


def decide(observe: EvaluationObserver, evaluation: Evaluation) -> Decision:
    """Run the search's observer on an evaluation: go on, prune the trial, or end it here (its budget is spent)."""
    try:
        observe(evaluation)
    except Pruned:
        return "prune"
    except EnoughTraining:
        return "enough"
    return "go"


def obey(decision: Decision, evaluation: Evaluation) -> None:
    """Stop the trial where the deciding side's observer stopped it."""
    if decision == "prune":
        raise Pruned(f"pruned after evaluation {evaluation.number} (epoch {evaluation.epoch:g})")
    if decision == "enough":
        raise EnoughTraining
