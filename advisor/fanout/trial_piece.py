"""One trial of a tuned rung's search, trained by a Ray task while the driver runs the study (no Ray in here).

The driver asked the trial (its number and parameters) and named its work folder (advisor/fanout/scratch.py):
a retry after a kill resumes there from the trial's last checkpoint, and replays the evaluations judged
before it. Each evaluation goes to `judge` (the driver's pruner and budget), and the trial stops where the
decision says. The task hands back how the trial ended (its outcome, or what a pruned trial cost and showed)
and its trained artifact; the driver tells the study and keeps the artifact in its cache.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from advisor.fanout.bundle import TaskBundle, pack_cache, unpack_task
from advisor.fanout.piece import error_of, raise_error
from advisor.fanout.scratch import work_folder
from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
from harness.cards import TrainingReport
from harness.errors import LadderError
from tuning.judging import Evaluation
from tuning.loop import Pruned
from tuning.search import TrialOutcome
from tuning.trial_decisions import Decision, obey

Judge = Callable[[int, Evaluation], Decision]
"""The driver's decision on a trial's evaluation: (trial number, evaluation) -> go, prune or enough."""


@dataclass(frozen=True)
class TrialPiece:
    """A search trial of a rung: its number and parameters, the CPUs it has and its work folder."""

    rung: str
    threads: int
    scratch: Path
    number: int
    params: dict[str, Any]


@dataclass(frozen=True)
class TrialHarvest:
    """How a trial ended, its trained artifact, or the bad input it met."""

    number: int
    outcome: TrialOutcome | None = None
    pruned: tuple[str, TrainingReport | None] | None = None  # (why, what it cost and showed)
    folders: bytes = b""
    error: tuple[str, str] | None = None

    def ended(self) -> TrialOutcome | Pruned:
        """The trial's outcome, or the Pruned that stopped it; a task's bad input raised as the driver's own."""
        raise_error(self.error)
        if self.outcome is not None:
            return self.outcome
        assert self.pruned is not None  # a trial that is neither complete nor failed was pruned
        stop = Pruned(self.pruned[0])
        stop.report = self.pruned[1]
        return stop


def run_trial(bundle: TaskBundle, trial: TrialPiece, options: AssessOptions, judge: Judge) -> TrialHarvest:
    """Train one trial in its work folder, each evaluation judged by the driver."""
    os.environ["LADDER_THREADS"] = str(trial.threads)  # read by choose_placement when the run is prepared
    with tempfile.TemporaryDirectory(prefix="ladder-trial-") as folder, work_folder(trial.scratch) as cache:
        task_path = unpack_task(bundle, Path(folder) / "task")
        local = replace(options, rungs=(trial.rung,), store_path=cache / "store.sqlite")
        try:
            ended = _train(task_path, trial, local, judge)
        except LadderError as error:
            return TrialHarvest(trial.number, error=error_of(error))
        if isinstance(ended, Pruned):
            return TrialHarvest(trial.number, pruned=(str(ended), ended.report))
        return TrialHarvest(trial.number, outcome=ended, folders=pack_cache(cache))


def _train(task_path: Path, trial: TrialPiece, options: AssessOptions, judge: Judge) -> TrialOutcome | Pruned:
    from advisor.measure.rung_builder import bound_rungs
    from tuning.tuned import TunedPredictor

    run = prepare_run(task_path, options, QuietHooks())
    with bound_rungs(run) as rungs:
        predictor = rungs.build(run.planned[0]).predictor
        assert isinstance(predictor, TunedPredictor)  # the driver sends trials of a TunedPredictor's search only

        def observe(evaluation: Evaluation) -> None:
            obey(judge(trial.number, evaluation), evaluation)

        try:
            return predictor.trainer.trial(trial.params, observe)
        except Pruned as stop:
            return stop
