"""`advisor train`: train one tuned rung of a task and export its adapter, or a merged model."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from advisor.measure.endpoints import check_endpoints
from advisor.measure.prepare import AssessOptions, PreparedRun, ProgressHooks, prepare_run
from advisor.measure.rung_builder import BoundRungs, bound_rungs
from advisor.task.rung_plan import PlannedRung
from harness.cards import AdapterCard
from harness.distributed import writes_files
from harness.errors import InputError


@dataclass(frozen=True)
class TrainResult:
    """What `advisor train` did: where the rung's adapter (or model) is, where it was exported, and its card."""

    artifact: Path  # the cached adapter (or model) folder
    exported: Path | None  # the `--out` folder, when one was asked for
    card: AdapterCard | None
    trained_now: bool  # False: it was already trained, and loaded from the cache


def train_rung(task_path: Path, rung_name: str, out: Path | None, merge: bool, hooks: ProgressHooks) -> TrainResult:
    """Train (or reuse) the named tuned rung; copy the adapter, or save the merged model, to `out`."""
    run = prepare_run(task_path, AssessOptions(rungs=(rung_name,), rungs_option="--rung"), hooks)
    check_endpoints(run.endpoints, run.task.spec)  # a teacher at an endpoint is asked before the student trains
    with bound_rungs(run, hooks=hooks) as rungs:  # a student reaches its teacher
        return _train(run, rungs, run.planned[0], out, merge, rung_name)


def _train(
    run: PreparedRun, rungs: BoundRungs, planned: PlannedRung, out: Path | None, merge: bool, rung_name: str
) -> TrainResult:
    tuned = rungs.tuned(planned)  # a prompting rung is not built: nothing to train
    if tuned is None:
        raise InputError(f"--rung: '{rung_name}' is a prompting rung ({planned.type.kind}); nothing to train")
    if merge and not tuned.mergeable:
        raise InputError(f"--merge: only a lora adapter merges into its base ('{rung_name}' is {planned.type.kind})")
    tuned.engine()  # search, train or load
    artifact = tuned.artifact_dir
    card = tuned.card()
    if out is not None and writes_files():  # under a launch, rank 0 exports
        if out.exists() and any(out.iterdir()):
            raise InputError(f"{out}: the export folder is not empty")
        if merge:
            tuned.standalone().save_pretrained(out, safe_serialization=True)  # a merged copy
            run.context.engine.tokenizer.save_pretrained(out)
            shutil.copy2(artifact / "card.json", out / "adapter-card.json")
            shutil.copy2(artifact / "card.md", out / "adapter-card.md")
        else:
            shutil.copytree(artifact, out, dirs_exist_ok=True)
    return TrainResult(artifact=artifact, exported=out, card=card, trained_now=tuned.trained_now)
