"""`advisor train`: train one tuned rung of a task and export its adapter, or a merged model."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

from advisor.measure.endpoints import EndpointBinding, check_endpoints, resolve_endpoints
from advisor.measure.prepare import AssessOptions, PreparedRun, ProgressHooks, default_store_path, prepare_run
from advisor.measure.rung_builder import TaskRungs
from advisor.task.rung_plan import PlannedRung
from harness.data.store import Store
from harness.distributed import writes_files
from harness.errors import InputError


def train_rung(task_path: Path, rung_name: str, out: Path | None, merge: bool, hooks: ProgressHooks) -> dict[str, Any]:
    """Train (or reuse) the named tuned rung; copy the adapter, or save the merged model, to `out`."""
    run = prepare_run(task_path, AssessOptions(rungs=(rung_name,), rungs_option="--rung"), hooks)
    planned = run.planned[0]
    store = Store(default_store_path(run.task))
    try:
        return _train(run, planned, store, out, merge, rung_name)
    finally:
        store.close()


def _train(
    run: PreparedRun, planned: PlannedRung, store: Store, out: Path | None, merge: bool, rung_name: str
) -> dict[str, Any]:
    check_endpoints(run.endpoints, run.task.spec)  # a teacher at an endpoint is asked before the student trains
    spec = run.task.spec
    endpoints = EndpointBinding(resolve_endpoints(spec), store, spec.facts.data_must_stay_in_house)
    context = TaskRungs(run.task, run.context, store, endpoints, run.models).context  # a student reaches its teacher
    tuned = planned.type.build(planned.config, context).tuned()
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
            # a private copy: the adapter shares the base's weights with the run's engine, and merging writes them
            merged = copy.deepcopy(tuned.engine().model).merge_and_unload()
            merged.save_pretrained(out, safe_serialization=True)
            run.context.engine.tokenizer.save_pretrained(out)
            shutil.copy2(artifact / "card.json", out / "adapter-card.json")
            shutil.copy2(artifact / "card.md", out / "adapter-card.md")
        else:
            shutil.copytree(artifact, out, dirs_exist_ok=True)
    return {
        "artifact": str(artifact),
        "exported": str(out) if out else None,
        "card": card,
        "trained_now": tuned.trained_now,
    }
