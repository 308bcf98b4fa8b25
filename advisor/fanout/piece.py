"""One piece of an assessment, worked in a folder of its own: what a Ray task runs (no Ray in here).

A piece is a rung's share of the test split (its evaluation shard), or a whole rung: its choice on
validation or its training, its test answers, its latency sample and its forgetting probes. It starts
from the answers the driver already has, computes only what is missing, and hands back everything
it stored and every folder it made; the driver takes them in. A LadderError (bad input) comes back
as a value, so the driver reports it as a local run would.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from advisor.fanout.bundle import TaskBundle, pack_cache, unpack_task
from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
from harness.data.store import OutputRow, ResponseRow, Store
from harness.errors import InputError, LadderError, RunError


@dataclass(frozen=True)
class Piece:
    """A rung's evaluation shard (indices into the test split), or the whole rung when `shard` is None."""

    rung: str
    threads: int  # the CPUs the task asked for: torch uses this many, not every core of a shared node
    shard: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Harvest:
    """What a piece computed: stored rows, the cache folders it made, or the bad input it met."""

    piece: Piece
    outputs: list[OutputRow] = field(default_factory=list)
    responses: list[ResponseRow] = field(default_factory=list)
    folders: bytes = b""
    error: tuple[str, str] | None = None  # (LadderError class, message)

    def raise_error(self) -> None:
        """Raise the piece's bad input or failed run as the driver's own error."""
        if self.error is None:
            return
        kind, message = self.error
        raise (InputError if kind == "InputError" else RunError)(message)


def run_piece(
    bundle: TaskBundle,
    piece: Piece,
    options: AssessOptions,
    known: tuple[Sequence[OutputRow], Sequence[ResponseRow]],
    *earlier: Harvest,
) -> Harvest:
    """Work one piece in a fresh folder, starting from the driver's rows and earlier pieces' harvests."""
    os.environ["LADDER_THREADS"] = str(piece.threads)  # read by choose_placement when the run is prepared
    with tempfile.TemporaryDirectory(prefix="ladder-piece-") as folder:
        task_path = unpack_task(bundle, Path(folder) / "task")
        store_path = Path(folder) / "cache" / "store.sqlite"
        with Store(store_path) as store:
            store.put_rows(*known)
            for harvest in earlier:
                store.put_rows(harvest.outputs, harvest.responses)
            before = {row[0] for row in store.output_rows()}, {row[0] for row in store.response_rows()}
        local = replace(options, rungs=(piece.rung,), store_path=store_path)
        try:
            _work(task_path, piece, local)
        except LadderError as error:
            return Harvest(piece, error=(type(error).__name__, str(error)))
        with Store(store_path) as store:
            outputs = [row for row in store.output_rows() if row[0] not in before[0]]
            responses = [row for row in store.response_rows() if row[0] not in before[1]]
        return Harvest(piece, outputs, responses, pack_cache(store_path.parent))


def _work(task_path: Path, piece: Piece, options: AssessOptions) -> None:
    from advisor.measure.assess import measure_rungs
    from advisor.measure.rung_builder import bound_rungs
    from harness.metrics.scoring import scorer_for
    from harness.runner import run_predictor

    hooks = QuietHooks()
    run = prepare_run(task_path, options, hooks)
    if piece.shard is None:
        measure_rungs(run, options, hooks)
        return
    with bound_rungs(run, hooks=hooks) as rungs:  # the piece's own store (options.store_path)
        built = rungs.build(run.planned[0])
        examples = [run.test[i] for i in piece.shard]
        scorer = scorer_for(built.context.task_type, built.context.labels)
        run_predictor(built.predictor, examples, rungs.store, scorer, latency_sample=0)
