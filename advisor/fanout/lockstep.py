"""The order in which the Ray driver hears the judgements of trials training at once on several workers.

Trials trained together in one process (tuning/trial_batch.py) are judged in lockstep: every trial's k-th
evaluation before any trial's (k+1)-th, and within one evaluation in trial order. The pruner compares a trial
only with the values other trials reported at the same evaluation, so in that order it compares each trial
with the same earlier trials, and prunes the same ones, as a search running its trials one after another.
Workers report whenever their trial reaches an evaluation; this holds each report until every report before
it in that order has been heard (or its trial has ended), so the search does not depend on which worker is
faster. A report heard before (a retried task replaying the evaluations it had judged before its kill) is
answered at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

Report = TypeVar("Report")


@dataclass
class Lockstep(Generic[Report]):
    """Reports of the trials numbered `trials` (in their order), each (trial, evaluation number, report)."""

    trials: list[int]
    heard: dict[int, int] = field(default_factory=dict)  # evaluations heard per trial
    ended: set[int] = field(default_factory=set)
    _waiting: list[tuple[int, int, Report]] = field(default_factory=list)

    def arrive(self, trial: int, evaluation: int, report: Report) -> None:
        """A worker's report of its trial's `evaluation`-th evaluation (from 1)."""
        self._waiting.append((trial, evaluation, report))

    def end(self, trial: int) -> None:
        """The trial's task has finished (completed, pruned): no later trial waits for it."""
        self.ended.add(trial)

    def due(self) -> list[tuple[int, int, Report, bool]]:
        """The reports to hear now, in order: (trial, evaluation, report, heard before)."""
        due = []
        while True:
            for waiting in [w for w in self._waiting if w[1] <= self.heard.get(w[0], 0)]:
                self._waiting.remove(waiting)
                due.append((*waiting, True))
            found = self._next()
            if found is None:
                return due
            self._waiting.remove(found)
            self.heard[found[0]] = found[1]
            due.append((*found, False))

    def _next(self) -> tuple[int, int, Report] | None:
        """The waiting report that comes next in the order, if it has arrived."""
        going = [t for t in self.trials if t not in self.ended]
        if not going:
            return None
        position = {trial: index for index, trial in enumerate(self.trials)}
        first = min(going, key=lambda t: (self.heard.get(t, 0) + 1, position[t]))
        expected = self.heard.get(first, 0) + 1
        return next((w for w in self._waiting if w[0] == first and w[1] == expected), None)
