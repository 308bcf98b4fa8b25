"""A search under a `torchrun` / `accelerate launch`: rank 0 runs the study, every rank trains each trial.

Only rank 0 touches Optuna and the study's journal (one writer, one sampler: the search is the one
a single process would run). Before each trial it sends the trial's parameters to the other ranks,
and after each evaluation its decision (go on, prune, or end here because the search's budget is spent),
so all ranks train the same trial in lockstep and stop it together. The finished result goes to every
rank last.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from harness.distributed import current_ranks, from_main
from tuning.judging import Evaluation
from tuning.loop import EvaluationObserver, Pruned
from tuning.search import RunTrial, SearchResult, TrialOutcome
from tuning.trial_decisions import decide, obey

_NOTHING: Any = None  # what a following rank offers to a broadcast from rank 0


def run_search_in_group(search: Callable[[RunTrial], SearchResult], run_trial: RunTrial) -> SearchResult:
    """`search(run_trial)` in one process; under a launch, the search on rank 0 and its trials on every rank."""
    ranks = current_ranks()
    if not ranks.distributed:
        return search(run_trial)
    if ranks.is_main:
        result = search(_leading(run_trial))
        from_main(_NOTHING)  # no more trials
        return from_main(result)
    while (started := from_main(_NOTHING)) is not None:
        number, params = started
        with suppress(Pruned):  # rank 0 records the pruned trial; this rank only stops training it
            run_trial(number, params, _following)
    chosen: SearchResult = from_main(_NOTHING)
    return chosen


def _leading(run_trial: RunTrial) -> RunTrial:
    """Rank 0's trials: each one's parameters, then each evaluation's pruning decision, go to the other ranks."""

    def run(number: int, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome:
        from_main((number, params))

        def observed(evaluation: Evaluation) -> None:
            obey(from_main(decide(observe, evaluation)), evaluation)

        return run_trial(number, params, observed)

    return run


def _following(evaluation: Evaluation) -> None:
    """The other ranks' observer: stop where rank 0's pruner, or its budget, stopped."""
    obey(from_main(_NOTHING), evaluation)
