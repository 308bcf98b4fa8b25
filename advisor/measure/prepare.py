"""A prepared run: the task validated, its data loaded, the model loaded, and the context every rung builds from.

`assess`, `--plan`, `train` and label suggestions all start here, with the pre-flight `advisor check` runs,
so bad input fails the same way everywhere, and always before the model loads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from advisor.measure.endpoints import resolve_endpoints
from advisor.measure.model_context import OtherModels, model_parts
from advisor.measure.preflight import preflight
from advisor.task.rung_plan import PlannedRung
from advisor.task.spec import LoadedTask
from harness.data.loading import Splits
from harness.distributed import join_process_group
from harness.environment import Placement, choose_placement
from harness.inference.models import ModelSource, resolve_model
from harness.inference.prompts import PromptFormat
from harness.metrics.task_metrics import PrimaryChoice, choose_primary_metric
from harness.progress import TrainingProgress
from harness.remote.endpoint import Endpoint
from harness.retrieval.embedding import Embedder
from harness.rungs import RungContext
from harness.task_types import get_task_type
from harness.types import Example


@dataclass(frozen=True)
class AssessOptions:
    """What the command line can change about a run."""

    rungs: tuple[str, ...] | None = None
    limit: int | None = None
    store_path: Path | None = None
    device: str = "auto"
    allow_pickle: bool = False  # accept a model folder whose weights are only pickle files
    rungs_option: str = "--rungs"  # the command-line option that chose `rungs`, for its error message


class ProgressHooks(TrainingProgress, Protocol):
    """How the caller hears about progress (the CLI draws bars or prints lines; tests may ignore it)."""

    def stage(self, text: str) -> None:
        """A step with no count (loading the model)."""

    def rung_started(self, name: str, total: int) -> None:
        """A rung begins over `total` examples."""

    def advance(self, count: int) -> None:
        """`count` more examples of the current rung are done."""

    def rung_finished(self, name: str) -> None:
        """The current rung is done."""


class QuietHooks:
    """Progress nobody watches: the other ranks of a launch, a Ray worker, a benchmark."""

    def stage(self, text: str) -> None:
        """Ignored."""

    def rung_started(self, name: str, total: int) -> None:
        """Ignored."""

    def advance(self, count: int) -> None:
        """Ignored."""

    def rung_finished(self, name: str) -> None:
        """Ignored."""

    def training(self, rung: str, step: int, total: int, loss: float, tokens_per_s: float) -> None:
        """Ignored."""

    def trial(self, rung: str, number: int, trials: int, params: dict[str, Any]) -> None:
        """Ignored."""

    def evaluated(self, rung: str, epoch: float, loss: float, metric: float | None, metric_name: str) -> None:
        """Ignored."""


def default_store_path(task: LoadedTask) -> Path:
    """The store beside the task file: <task folder>/.advisor/store.sqlite."""
    return task.folder / ".advisor" / "store.sqlite"


@dataclass(frozen=True)
class PreparedRun:
    """A validated task with its data, the rungs to run, and the loaded model in a rung context."""

    task: LoadedTask
    planned: list[PlannedRung]
    splits: Splits
    test: tuple[Example, ...]
    source: ModelSource
    placement: Placement
    prompt_format: PromptFormat
    context: RungContext
    primary: PrimaryChoice
    models: OtherModels  # the models other than the task's that some rungs answer with
    store_path: Path  # the result store (`--store`, else .advisor/store.sqlite beside the task file)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # those the planned rungs run against


def label_counts(splits: Splits, labels: Sequence[str]) -> Counter[str]:
    """How often each label is the target in train + validation (never test: it must not steer choices)."""
    counts = Counter({label: 0 for label in labels})
    counts.update(example.target for example in (*splits.train, *splits.validation))
    return counts


def primary_metric_choice(task_type: str, chosen: str | None, splits: Splits, labels: Sequence[str]) -> PrimaryChoice:
    """The metric that ranks this task's rungs (see harness.metrics.task_metrics.choose_primary_metric)."""
    counts = label_counts(splits, labels) if get_task_type(task_type).labelled else Counter[str]()
    return choose_primary_metric(task_type, chosen, counts)


def prepare_run(task_path: Path, options: AssessOptions, hooks: ProgressHooks, *, sends: bool = True) -> PreparedRun:
    """Validate everything (the pre-flight `advisor check` runs), then the model's parts; the model itself loads
    on first use, so a run whose every answer is stored never loads it. Bad input fails before any work.

    `sends`: the run sends requests to the task's endpoints (a plan does not, so it needs no key).
    """
    checked = preflight(task_path, options.rungs, options.rungs_option, allow_pickle=options.allow_pickle, sends=sends)
    task, planned, splits, labels = checked.task, checked.planned, checked.splits, checked.labels
    spec = task.spec
    endpoints = resolve_endpoints(spec, planned)
    test = splits.test[: options.limit] if options.limit else splits.test
    store_path = options.store_path or default_store_path(task)
    source = resolve_model(task.model_name(), allow_pickle=options.allow_pickle)
    placement = choose_placement(options.device)
    join_process_group(placement.device)  # under torchrun / accelerate launch: this rank's place in the launch
    parts = model_parts(source, task, labels, placement, lambda: hooks.stage(f"loading model {spec.model}"))
    models = OtherModels(task, labels, placement, options.allow_pickle, lambda m: hooks.stage(f"loading model {m}"))
    primary = primary_metric_choice(spec.type, spec.primary_metric, splits, labels)
    context = RungContext(
        engine=parts.engine,
        prompts=parts.prompts,
        task_type=spec.type,
        labels=labels,
        train=splits.train,
        validation=splits.validation,
        model_fingerprint=parts.fingerprint,
        seed=spec.seed,
        task_dir=task.folder,
        cache_dir=store_path.parent,
        embedder=_lazy_embedder(),
        model_path=source.path,
        model_name=source.name,
        device=placement.device,
        training_progress=hooks,
        primary_metric=primary.metric,
        data_files=task.data_files(),
    )
    return PreparedRun(
        task,
        planned,
        splits,
        tuple(test),
        source,
        placement,
        parts.prompts.format,
        context,
        primary,
        models,
        store_path,
        endpoints,
    )


def _lazy_embedder() -> Callable[[], Embedder]:
    """One embedder for the whole run, loaded only if a rung asks for it."""
    loaded: list[Embedder] = []

    def get() -> Embedder:
        if not loaded:
            loaded.append(Embedder())
        return loaded[0]

    return get
