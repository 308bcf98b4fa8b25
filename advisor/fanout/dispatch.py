"""What the Ray driver sends: a rung's pieces (with the driver's artifacts they start from) and a search's trials.

Every task is sent with the resources it declares (CPUs, a GPU on CUDA, its memory estimate) and Ray's
retries, and is named a work folder beside the driver's store (advisor/fanout/scratch.py) where a retry
resumes. A rung that trains and whose artifact the driver already has (trained by `advisor train`, by an
earlier run, or by the search the driver just ran) sends it along, so the task loads it instead of training
again. A tuned rung whose search has not finished is searched here, its trials as tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.fanout.bundle import pack_folders
from advisor.fanout.piece import Piece, run_piece
from advisor.fanout.ray_trials import RayTrials, Referee, RefereeLink
from advisor.fanout.trial_piece import TrialPiece, run_trial
from advisor.measure.prepare import AssessOptions
from advisor.measure.rung_builder import BoundRungs
from advisor.task.rung_plan import PlannedRung
from harness.data.hashing import content_hash
from harness.data.store import NotStored
from harness.rungs import Predictor
from tuning.artifacts import is_complete
from tuning.search import TrialPool
from tuning.tuned import TunedPredictor

RETRIES = 3  # a task whose worker process dies (killed, out of memory) runs again this many times


@dataclass(frozen=True)
class Dispatch:
    """How this run sends tasks: Ray, the task folder and known rows in its object store, what each task gets."""

    ray: Any
    options: AssessOptions
    bundle: Any  # the task folder (an object ref)
    known: Any  # the driver's stored rows (an object ref)
    scratch: Path  # the folder beside the store that holds the tasks' work folders
    cache_dir: Path  # the driver's cache (beside its store)
    resources: dict[str, int]  # num_cpus, num_gpus of every task
    memory: dict[str, int]  # bytes each rung's tasks ask for
    parallel: int  # tasks of one CPU share the cluster runs at once

    def piece(
        self, planned: PlannedRung, *earlier: Any, shard: tuple[int, ...] | None = None, carried: bytes = b""
    ) -> Any:
        """Send a rung's piece (an evaluation shard, or the whole rung after `earlier` pieces): its object ref."""
        folder = self.scratch / content_hash(planned.name, shard)
        work = Piece(planned.name, self.resources["num_cpus"], folder, shard, carried)
        task = self.ray.remote(run_piece).options(**self._declared(planned))
        return task.remote(self.bundle, work, self.options, self.known, *earlier)

    def search(self, planned: PlannedRung, predictor: TunedPredictor) -> int:
        """Run the rung's search here, its trials as tasks, up to one per worker at once; the tasks it sent."""
        ray = self.ray
        referee = ray.remote(Referee).options(num_cpus=0).remote()
        link = RefereeLink(referee)
        task = ray.remote(run_trial).options(**self._declared(planned))
        folder = self.scratch / "trials" / predictor.artifacts.search_folder().name

        def submit(number: int, params: dict[str, Any]) -> Any:
            work = TrialPiece(planned.name, self.resources["num_cpus"], folder / str(number), number, params)
            return task.remote(self.bundle, work, self.options, link)

        sending = RayTrials(ray, referee, submit, predictor, self.cache_dir)
        try:
            predictor.search.run(TrialPool(self.parallel, sending.run_trials))
        finally:
            ray.kill(referee)
        predictor.search.record_on_card()  # the driver's card carries the search, as a local run's does
        return sending.sent

    def _declared(self, planned: PlannedRung) -> dict[str, Any]:
        return {**self.resources, "memory": self.memory[planned.name], "max_retries": RETRIES}


def tuned_predictor(bound: BoundRungs, planned: PlannedRung) -> Predictor | None:
    """The rung's predictor, built here, when it trains weights (its artifacts may be in the driver's cache)."""
    if not planned.type.changes_weights:
        return None
    try:
        return bound.build(planned).predictor
    except NotStored:  # a choice on validation nobody made yet: the task makes it
        return None


def pending_search(predictor: Predictor | None) -> TunedPredictor | None:
    """A tuned rung whose search has not finished (the driver runs it, its trials on Ray); else None."""
    if isinstance(predictor, TunedPredictor) and predictor.space and predictor.search_result() is None:
        return predictor
    return None


def carried(predictor: Predictor | None, cache_dir: Path) -> bytes:
    """What the driver has of a rung's training (a finished search, the trained artifact), for its task to load
    instead of training again."""
    tuned = predictor.tuned() if predictor is not None else None
    if tuned is None or pending_search(predictor) is not None:
        return b""
    folders = []
    if isinstance(predictor, TunedPredictor) and predictor.space:
        folders.append(predictor.artifacts.search_folder())
    if is_complete(tuned.artifact_dir):
        folders.append(tuned.artifact_dir)
    return pack_folders(cache_dir, folders)
