"""One piece of an assessment, worked in a folder of its own: what a Ray task runs (no Ray in here).

A piece is a rung's share of the test split (its evaluation shard), or a whole rung: its choice on
validation or its training, its test answers, its latency sample and its forgetting probes. It starts
from the answers the driver already has and the trained artifacts the driver sends it (an adapter, a
finished search: it loads them instead of training again), computes only what is missing, and hands
back everything it stored and every folder it made; the driver takes them in. A LadderError (bad input) comes back
as a value, so the driver reports it as a local run would.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from advisor.fanout.bundle import TaskBundle, install_cache, pack_cache, unpack_task
from advisor.fanout.scratch import work_folder
from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
from harness.data.store import OutputRow, ResponseRow, Store
from harness.errors import InputError, LadderError, RunError


@dataclass(frozen=True)
class Piece:
    """A rung's evaluation shard (indices into the test split), or the whole rung when `shard` is None."""

    rung: str
    threads: int  # the CPUs the task asked for: torch uses this many, not every core of a shared node
    scratch: Path  # its work folder, named by the driver (advisor/fanout/scratch.py): a retry resumes there
    shard: tuple[int, ...] | None = None
    carried: bytes = b""  # the driver's cache folders it starts from (a trained adapter, a finished search)


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
        raise_error(self.error)


def raise_error(error: tuple[str, str] | None) -> None:
    """Raise a task's bad input or failed run (what error_of made of it) as the driver's own error."""
    if error is None:
        return
    kind, message = error
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
    outputs_known = {row[0] for row in known[0]} | {row[0] for h in earlier for row in h.outputs}
    responses_known = {row[0] for row in known[1]} | {row[0] for h in earlier for row in h.responses}
    with tempfile.TemporaryDirectory(prefix="ladder-piece-") as folder, work_folder(piece.scratch) as cache:
        task_path = unpack_task(bundle, Path(folder) / "task")
        store_path = cache / "store.sqlite"
        with Store(store_path) as store:  # a retry finds what the killed attempt stored; the same rows stay
            store.put_rows(*known)
            for harvest in earlier:
                store.put_rows(harvest.outputs, harvest.responses)
        carried = install_cache(piece.carried, cache)
        local = replace(options, rungs=(piece.rung,), store_path=store_path)
        try:
            _work(task_path, piece, local)
        except LadderError as error:
            return Harvest(piece, error=error_of(error))
        with Store(store_path) as store:
            outputs = [row for row in store.output_rows() if row[0] not in outputs_known]
            responses = [row for row in store.response_rows() if row[0] not in responses_known]
        return Harvest(piece, outputs, responses, pack_cache(cache, known=carried))


def error_of(error: LadderError) -> tuple[str, str]:
    """A LadderError as a value that travels back to the driver: its class name and message."""
    return type(error).__name__, str(error)


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
