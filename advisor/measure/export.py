"""`advisor export`: a trained rung's weights as an ONNX model, merged, exported, checked, with its card.

The export goes where the onnx rung finds it (the task's .advisor/exports/, by content hash), so exporting
and assessing never make the same export twice; `-o` copies it out. Nothing is trained here: a rung that is
not trained yet is bad input, and the message names the command that trains it.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from advisor.measure.prepare import AssessOptions, ProgressHooks, prepare_run
from advisor.measure.rung_builder import BoundRungs, bound_rungs
from advisor.task.rung_plan import PlannedRung
from harness.data.store import NotStored
from harness.errors import InputError
from harness.inference.onnx_graph import require_onnx
from harness.rungs import TunedModel
from tuning.export_card import ExportCard
from tuning.onnx_export import ExportRequest, OnnxExports


@dataclass(frozen=True)
class ExportResult:
    """What `advisor export` did: where the export is kept, where it was copied, its card."""

    folder: Path  # the export under the task's .advisor/exports/
    out: Path | None  # the `-o` folder it was copied to
    card: ExportCard
    made_now: bool  # False: it was already stored


def export_rung(
    task_path: Path, rung_name: str, request: ExportRequest, out: Path | None, hooks: ProgressHooks
) -> ExportResult:
    """Export the named trained rung (or read its stored export) and copy it to `out` when given."""
    require_onnx(f"advisor export --format {request.format}")  # before any work
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"-o {out}: the export folder must be new or empty")
    run = prepare_run(task_path, AssessOptions(rungs=(rung_name,), rungs_option="--rung"), hooks)
    planned = run.planned[0]
    command = f"advisor export {shlex.quote(str(task_path))} --rung"
    with bound_rungs(run, stored_only=True, hooks=hooks) as rungs:  # never trains, never chooses
        tuned = _trained(rungs, planned, command, request)
        exports = OnnxExports(planned.name, tuned, rungs.context_for(planned))
        made_now = exports.stored(request) is None
        if made_now:
            hooks.stage(f"{planned.name}: merging, exporting to {request.describe()}, checking against PyTorch")
        card = exports.obtain(request)
        folder = exports.folder(request)
    if out is not None:
        shutil.copytree(folder, out, dirs_exist_ok=True)
    return ExportResult(folder=folder, out=out, card=card, made_now=made_now)


def _trained(rungs: BoundRungs, planned: PlannedRung, command: str, request: ExportRequest) -> TunedModel:
    """The rung's trained model; a prompting rung, an export, a method that cannot merge or an untrained rung is
    bad input."""
    name, kind, task = planned.name, planned.type.kind, shlex.quote(rungs.source)
    source = planned.config.variant_of()
    if source is not None:
        again = f"{command} {source} --format {request.format} [--quantize int8]"
        raise InputError(f"--rung: '{name}' is itself an export of '{source}'; export that rung: {again}")
    if not planned.type.changes_weights:
        raise InputError(f"--rung: '{name}' is a prompting rung ({kind}); it trains no weights to export")
    try:
        tuned = rungs.tuned(planned)
        trained = tuned is not None and tuned.card() is not None
    except NotStored:  # what it learns from has not chosen or answered yet (a student's teacher)
        tuned, trained = None, False
    if tuned is not None and tuned.exports_as is None:
        raise InputError(
            f"--rung: '{name}' ({kind}) does not merge into one model (its method says so: a 4-bit base or "
            "virtual tokens), so it has no export; export a lora, dpo, distill or full rung"
        )
    if tuned is None or not trained:
        raise InputError(
            f"--rung: '{name}' is not trained yet; train it first: advisor train {task} --rung {name} "
            f"(or advisor assess {task} --rungs {name})"
        )
    return tuned
