"""A tuned rung's search with its trials on Ray: the driver runs the study, each trial trains in a Ray task.

The driver runs tuning/search.py exactly as one process does (ask and tell, the same seeded sampler and
pruner, the study's journal beside its store), asking up to one trial per worker at a time (a wave, as trials
trained together in one process are asked). Each trial is a Ray task (advisor/fanout/trial_piece.py). At
each evaluation the task sends its judgement to a small actor, the referee, and waits; the driver takes the
judgements from the referee in lockstep order (advisor/fanout/lockstep.py), runs the search's observer on
each (report to the pruner, the relative budget), and sends back go, prune or enough. A finished task
hands back its trial's outcome and adapter; the driver tells the study and keeps the adapter in its cache.
Ray comes in as an argument: advisor/fanout/ray_executor.py alone imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor.fanout.bundle import install_cache
from advisor.fanout.lockstep import Lockstep
from advisor.fanout.trial_piece import TrialHarvest
from tuning.artifacts import is_complete
from tuning.judging import Evaluation
from tuning.loop import EvaluationObserver, Pruned
from tuning.search import TrialOutcome
from tuning.trial_decisions import Decision, decide
from tuning.tuned import TunedPredictor

Submit = Callable[[int, dict[str, Any]], Any]
"""Sends one trial (its number and parameters) to Ray as a task -> the task's object ref."""


class Referee:
    """The Ray actor (asyncio) between trials and the driver: each judgement waits here until the driver decides."""

    def __init__(self) -> None:
        self._reports: list[tuple[int, Evaluation]] = []
        self._waiting: dict[tuple[int, int], asyncio.Future[Decision]] = {}
        self._arrived = asyncio.Event()

    async def judge(self, trial: int, evaluation: Evaluation) -> Decision:
        """A trial's evaluation, from its task: returns when the driver has decided on it."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting[(trial, evaluation.number)] = future  # a retried task's replay replaces its dead attempt's
        self._reports.append((trial, evaluation))
        self._arrived.set()
        return await future

    async def reports(self) -> list[tuple[int, Evaluation]]:
        """The evaluations reported since the last call (waits for one at least)."""
        await self._arrived.wait()
        self._arrived.clear()
        reports, self._reports = self._reports, []
        return reports

    async def decide(self, trial: int, number: int, decision: Decision) -> None:
        """The driver's decision on a trial's `number`-th evaluation, to the task waiting for it."""
        future = self._waiting.pop((trial, number), None)
        if future is not None and not future.done():
            future.set_result(decision)


class RefereeLink:
    """What a trial's task holds of the referee: its judge (advisor/fanout/trial_piece.py's Judge)."""

    def __init__(self, referee: Any):
        self.referee = referee

    def __call__(self, trial: int, evaluation: Evaluation) -> Decision:
        import ray  # in the worker, which Ray started

        decision: Decision = ray.get(self.referee.judge.remote(trial, evaluation))
        return decision


class RayTrials:
    """A TrialPool whose trials are Ray tasks; a trial whose artifact the driver already has is read back here."""

    def __init__(self, ray: Any, referee: Any, submit: Submit, predictor: TunedPredictor, cache_dir: Path):
        self.ray = ray
        self.referee = referee
        self.submit = submit
        self.predictor = predictor
        self.cache_dir = cache_dir
        self.sent = 0  # trial tasks sent
        self._inbox = referee.reports.remote()  # one call outstanding at a time: each takes what arrived
        self._decided: dict[tuple[int, int], Decision] = {}

    def run_trials(self, asked: list[tuple[int, dict[str, Any], EvaluationObserver]]) -> list[TrialOutcome | Pruned]:
        """Train the asked trials at once, each on a worker, their judgements heard in lockstep order."""
        outcomes: dict[int, TrialOutcome | Pruned] = {}
        observers = {number: observe for number, _, observe in asked}
        running: dict[Any, int] = {}
        for number, params, observe in asked:
            if self._stored(params):
                outcomes[number] = self._read_back(params, observe)
            else:
                running[self.submit(number, params)] = number
                self.sent += 1
        lockstep: Lockstep[Evaluation] = Lockstep(list(running.values()))
        try:
            while running:
                ready, _ = self.ray.wait([self._inbox, *running], num_returns=1)
                if ready[0] == self._inbox:
                    for trial, evaluation in self.ray.get(self._inbox):
                        lockstep.arrive(trial, evaluation.number, evaluation)
                    self._inbox = self.referee.reports.remote()
                else:
                    number = running.pop(ready[0])
                    harvest: TrialHarvest = self.ray.get(ready[0])
                    outcomes[number] = harvest.ended()
                    install_cache(harvest.folders, self.cache_dir)
                    lockstep.end(number)
                for trial, number, evaluation, before in lockstep.due():
                    key = (trial, number)
                    if not before:  # else a replay: it gets the decision it got the first time
                        self._decided[key] = decide(observers[trial], evaluation)
                    self.referee.decide.remote(trial, number, self._decided[key])
        except BaseException:
            for ref in running:  # the search stops here; its other trials need not go on
                self.ray.cancel(ref)
            raise
        return [outcomes[number] for number, _, _ in asked]

    def _stored(self, params: dict[str, Any]) -> bool:
        predictor = self.predictor
        return is_complete(predictor.artifacts.folder(predictor.task.concrete(params)))

    def _read_back(self, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome | Pruned:
        """A trial trained before (by an earlier search, or before a kill): its judgements replayed here."""
        try:
            return self.predictor.trainer.trial(params, observe)
        except Pruned as stop:
            return stop
