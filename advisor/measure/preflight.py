"""The pre-flight: everything of a task's input that a run would refuse, found before any model loads or request.

`advisor check` is the pre-flight alone; `assess` (and `train`, `--plan`, `serve`) run it first, so bad
input fails the same way everywhere and at once, never after the model has answered the test split.
Nothing here loads a model, converts one, or reaches the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from advisor.measure.endpoints import check_endpoints, resolve_endpoints
from advisor.measure.model_context import prompt_format
from advisor.task.data import load_task_data
from advisor.task.extra_metrics import check_extra_metrics
from advisor.task.rung_plan import PlannedRung, plan_rungs
from advisor.task.spec import LoadedTask, load_task
from harness.data.loading import FieldMap, Splits, load_inputs
from harness.data.preferences import load_preferences
from harness.errors import InputError, did_you_mean
from harness.inference.models import check_model
from harness.inference.tokenizer import saved_chat_template
from harness.probes.forgetting import probe_set
from harness.retrieval.corpus import corpus_documents
from tuning.registry import export_form, get_method, method_names

T = TypeVar("T")

# Each kind of file a rung may declare it reads (RungConfig.files_needed), read as the rung will read it.
READERS: dict[str, Callable[[Path], object]] = {
    "preferences": load_preferences,
    "unlabelled": lambda path: load_inputs(path, FieldMap()),
    "corpus": corpus_documents,
}


@dataclass(frozen=True)
class Preflight:
    """A task that passed: its rungs to run, its data and its labels."""

    task: LoadedTask
    planned: list[PlannedRung]
    splits: Splits
    labels: tuple[str, ...]


def preflight(
    task_path: Path,
    only: Sequence[str] | None = None,
    only_option: str = "--rungs",
    *,
    allow_pickle: bool = False,
    sends: bool = True,
) -> Preflight:
    """Validate the task file, its data, rungs, models, endpoints and metrics; bad input raises InputError.

    `only`: the rungs to run (`only_option` chose them); `sends`: the run sends requests to the endpoints (a plan
    sends none, so it needs no key).
    """
    task = load_task(task_path)
    spec = task.spec
    every = plan_rungs(spec.rungs, str(task.path), None, spec.endpoints)
    planned = plan_rungs(spec.rungs, str(task.path), only, spec.endpoints, only_option) if only else every
    reached = _with_teachers(task, planned, every, allow_pickle)
    _check_variants(task, planned, every)
    if sends:
        _in_file(task, check_endpoints, resolve_endpoints(spec, reached), spec)
    splits, labels = load_task_data(task)
    for p in planned:  # what the rung's factory would refuse, said before any model loads
        p.config.check_labels(labels, p.name)
    _in_file(task, check_model, task.model_name(), allow_pickle=allow_pickle)
    _check_chat(task, labels)
    for p in reached:
        if p.model is not None:
            _in_file(task, check_model, p.model, allow_pickle=allow_pickle, field=f"rungs.{p.name}.model")
    _in_file(task, check_extra_metrics, spec.evaluation.metrics, splits.test, task.folder)
    _check_other_files(task, planned)
    return Preflight(task, planned, splits, labels)


def _with_teachers(
    task: LoadedTask, planned: list[PlannedRung], every: list[PlannedRung], allow_pickle: bool
) -> list[PlannedRung]:
    """The planned rungs and the rungs they learn from (a teacher runs too); a teacher that is no rung is a model."""
    by_name = {p.name: p for p in every}
    reached = list(planned)
    for p in planned:
        teacher = p.config.learns_from()
        if teacher is None:
            continue
        if teacher in by_name:
            if by_name[teacher] not in reached:
                reached.append(by_name[teacher])
            continue
        try:
            check_model(teacher, allow_pickle=allow_pickle)
        except InputError as error:
            raise InputError(
                f"{task.path}: rungs.{p.name}.teacher: no rung named '{teacher}' to learn from, nor a model "
                f"({error}; the task's rungs: {', '.join(by_name)})"
            ) from None
    return reached


def _check_variants(task: LoadedTask, planned: list[PlannedRung], every: list[PlannedRung]) -> None:
    """A variant (an export) names a tuned rung of the task whose method merges into one model."""
    by_name = {p.name: p for p in every}
    for p in planned:
        name = p.config.variant_of()
        if name is None:
            continue
        where = f"{task.path}: rungs.{p.name}.of"
        source = by_name.get(name)
        if source is None:
            raise InputError(
                f"{where}: no rung named '{name}' in the task{did_you_mean(name, by_name)} "
                f"(the task's rungs: {', '.join(by_name)})"
            )
        if not source.type.changes_weights:
            raise InputError(f"{where}: '{name}' is a prompting rung ({source.type.kind}); it has no weights to export")
        if source.config.variant_of() is not None:
            raise InputError(f"{where}: '{name}' is itself an export of '{source.config.variant_of()}'; name that rung")
        if source.type.kind in method_names() and export_form(get_method(source.type.kind)) is None:
            raise InputError(
                f"{where}: '{name}' ({source.type.kind}) does not merge into one model (its method says so), so it "
                "has no export; export a lora, dpo, distill or full rung"
            )


def _check_chat(task: LoadedTask, labels: tuple[str, ...]) -> None:
    """`prompt.chat: on` for a local model whose saved tokenizer has no chat template (its files tell)."""
    folder = Path(task.model_name())
    if task.spec.prompt.chat == "on" and folder.is_dir() and saved_chat_template(folder) is False:
        prompt_format(task, labels, False, task.spec.model)  # refuses, as the run would once the model is loaded


def _check_other_files(task: LoadedTask, planned: list[PlannedRung]) -> None:
    """The files a planned rung reads after others have run: the probes, and those its options declare (preference
    pairs, unlabelled inputs, a retrieval corpus), each file read once as the rung will."""
    spec = task.spec
    from_task: set[str] = set()  # kinds of the task's own data files that a rung reads
    read: set[tuple[str, Path]] = set()
    for p in planned:
        for kind, own in p.config.files_needed().items():
            reader = _reader(p, kind)
            if own is None:
                from_task.add(kind)
            elif (kind, task.resolve(own)) not in read:
                read.add((kind, task.resolve(own)))
                _in_file(task, reader, task.resolve(own), field=f"rungs.{p.name}.{kind}")
    tuned = [p for p in planned if p.type.changes_weights]
    if tuned and spec.forgetting.enabled:
        forgetting = spec.forgetting
        _in_file(
            task, probe_set, forgetting.probes, task.folder, forgetting.max_items, spec.seed, field="forgetting.probes"
        )
    files = task.data_files()
    for kind in sorted(from_task & files.keys()):  # a data file's problem names that file and its row
        READERS[kind](files[kind])


def _reader(planned: PlannedRung, kind: str) -> Callable[[Path], object]:
    if kind not in READERS:  # the rung's code is wrong, not the task file
        raise ValueError(
            f"rung '{planned.type.kind}': files_needed() names '{kind}'; known kinds: {', '.join(sorted(READERS))}"
        )
    return READERS[kind]


def _in_file(task: LoadedTask, check: Callable[..., T], *args: Any, field: str = "", **kwargs: Any) -> T:
    """`check(*args)`, its InputError said with the task file in front (and the field, when it names none)."""
    try:
        return check(*args, **kwargs)
    except InputError as error:
        message = str(error)
        if message.startswith(str(task.path)):
            raise
        raise InputError(f"{task.path}: {field + ': ' if field else ''}{message}") from None
