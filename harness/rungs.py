"""The rung registry and the one-call protocol every rung implements.

A rung is a factory registered by name: `@rung("few_shot", config=FewShotConfig)`. Built-in rungs
register exactly as a third-party one does (a module imported through the `ladder.rungs` entry
point group), and rungs never import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import ConfigDict, ValidationError

from harness.cards import AdapterCard
from harness.errors import InputError
from harness.inference.answerer import Answerer, LocalAnswerer
from harness.inference.engine import Engine
from harness.inference.memo import AnswerMemo, MemoAnswerer
from harness.inference.observed import ObservedAnswerer, PromptObserver
from harness.inference.prompts import PromptBuilder
from harness.ladder import ADAPTER_STEP, LADDER_STEPS
from harness.progress import TrainingProgress
from harness.registry import Registry
from harness.schema import NumbersNotBooleans, describe_validation_error
from harness.types import Example, Output


@dataclass(frozen=True)
class RequestShape:
    """What one request of a rung costs, in the units `--plan` prices: prompt tokens and the work around them."""

    prompt_tokens: float
    shared_prefix: bool = False  # the prompt's front is one cached prefix: only the rest is computed per request
    embeds: bool = False  # the rung embeds the train split and every question (similar demonstrations, retrieval)
    new_tokens: int = 0  # tokens generated per request (0: answered by scoring the labels)


@dataclass(frozen=True)
class PromptSizes:
    """Mean tokens of the task's prompts, measured on its own examples, for `--plan`."""

    zero: float  # the zero_shot prompt (instruction, label list, the question)
    tuned: float  # the prompt a tuned rung answers (the same without the label list: it learned the labels)
    demo: float  # what one demonstration adds (its question and answer)


class RungConfig(NumbersNotBooleans):
    """Base of every rung's options: unknown options are errors, not silently ignored (nor `true` as a number)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def request_shape(self, sizes: PromptSizes, has_labels: bool) -> RequestShape:
        """A request's cost for `--plan`, given the task's prompt sizes.

        The default is a zero_shot-sized prompt answered by scoring; a rung whose requests differ says so.
        """
        return RequestShape(prompt_tokens=sizes.zero)

    def training_max_length(self) -> int | None:
        """The longest training row the rung keeps (rows beyond it are skipped), or None for no training."""
        return None

    # What the rung needs, declared, so the pre-flight checks it before any model loads without knowing the rung.

    def files_needed(self) -> dict[str, str | None]:
        """The files it reads besides the task's splits, by kind: "preferences" (pairs), "unlabelled" (inputs) or
        "corpus" (a folder of .txt/.md or a .jsonl of passages). A path is the rung's own option of that name
        (relative to the task file); None is the task's `data.<kind>` file, read when the task names one."""
        return {}

    def learns_from(self) -> str | None:
        """The rung of the task (or else a model) it learns from, which runs when it runs; None: it learns from none."""
        return None

    def variant_of(self) -> str | None:
        """The tuned rung of the task whose trained weights it runs in another form (an ONNX export); it sits on
        that rung's step of the ladder, and that rung is trained when it runs. None: it is a rung of its own."""
        return None

    def check_labels(self, labels: tuple[str, ...], rung: str) -> None:
        """Refuse (InputError) the options that the task's labels make bad input, as the factory would."""

    def calibrates(self) -> bool:
        """Whether it divides its label scores by a content-free prior (it also sends content-free prompts)."""
        return False


def answer_tokens(mode: str, max_new_tokens: int, has_labels: bool) -> int:
    """Tokens a request generates: none when it scores the labels (`auto` scores when there are labels)."""
    generating = mode == "generate" or (mode == "auto" and not has_labels)
    return max_new_tokens if generating else 0


C = TypeVar("C", bound=RungConfig)


class Predictor(Protocol):
    """What a built rung is: one-off preparation, answers for a batch of examples, and what decides them."""

    def fingerprint(self) -> str:
        """A hash of everything that determines the outputs (model, prompt, options)."""
        ...

    def prepare(self) -> None:
        """One-off work before any request is timed (training, building an index, loading a model); may do nothing."""
        ...

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """One output per example, in order; the runner stamps the latency."""
        ...

    def tuned(self) -> TunedModel | None:
        """The trained model behind a tuned rung; None for a rung that changes no weights."""
        ...


@dataclass(frozen=True)
class PromptAnswering:
    """How a tuned model answers when it answers the task's zero_shot prompt without the label list (the prompt
    the tuned rungs train on): by scoring the labels or by generating, up to `max_new_tokens`."""

    mode: Literal["score", "generate"]  # resolved for the task's labels
    max_new_tokens: int


class TunedModel(Protocol):
    """What callers need of a rung that trains weights: its artifact and card, its model, how to plan it.

    A rung registered from outside that returns one from `Predictor.tuned()` is forgetting-probed,
    held to `max_forgetting`, priced by `--plan` and exported by `advisor train` exactly like lora.
    """

    @property
    def artifact_dir(self) -> Path:
        """The folder of the trained artifact (after `prepare`)."""
        ...

    @property
    def trained_now(self) -> bool:
        """Whether this process trained it (False when it was read back from the store)."""
        ...

    @property
    def mergeable(self) -> bool:
        """Whether the artifact can be merged into its base weights (`advisor train --merge`)."""
        ...

    @property
    def answering(self) -> PromptAnswering | None:
        """How it answers, when its model answers the tuned zero_shot prompt (`advisor serve` then batches its
        requests with other adapters' on one base); None when only its own `predict` knows."""
        ...

    @property
    def exports_as(self) -> Literal["merged", "whole"] | None:
        """How its weights become one plain model for export (`advisor export`, the onnx rung): an adapter merged
        into a copy of its base, or the whole fine-tuned model as it is; None when its method cannot merge (a
        4-bit base, virtual tokens), or when it is itself an export. Declared: nothing is loaded to say it."""
        ...

    def standalone(self) -> Any:
        """Its weights as one plain model with no adapter, as `exports_as` says (after training or loading them);
        a merged model is a copy, so the engine's own model is left as it was."""
        ...

    def engine(self) -> Engine:
        """An engine over the tuned model (training it first if nothing is stored)."""
        ...

    def fingerprint(self) -> str:
        """A hash of what determines the weights and the answers."""
        ...

    def card(self) -> AdapterCard | None:
        """The artifact's card: training facts, hyperparameters, losses, its search; None before training."""
        ...

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """Write the evaluated metrics into the card."""
        ...

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """Epochs it is expected to train over all trials of its search (for `--plan`), when the run has already
        searched these method families (a search warm-started from one of them runs fewer trials)."""
        ...

    def search_family(self) -> str | None:
        """The method family whose learning rate its search chooses (a later search of it starts there); None
        when it does not search."""
        ...

    def epoch_work(self) -> tuple[int, int]:
        """(tokens one epoch trains on, validation examples judged per epoch, every judgement counted), for `--plan`."""
        ...

    def training_rate(self, rows: int) -> float:
        """Useful training tokens per second on this machine, timed on `rows` train rows (for `--plan`)."""
        ...

    def reseeded(self, seed: int) -> Predictor | None:
        """The same chosen configuration, trained again by the same procedure from another seed (after `prepare`),
        to measure how much the weights' randomness moves its answers; None when it cannot be retrained so."""
        ...


class OtherRungs(Protocol):
    """The task's other rungs, by name, as a rung that learns from one (a distillation student) sees them."""

    def fingerprint(self, name: str) -> str:
        """A hash of everything that determines the named rung's answers."""
        ...

    def answers(self, name: str, examples: Sequence[Example]) -> list[Output]:
        """The named rung's answers to these examples (stored: a re-run asks nothing again)."""
        ...

    def tuned_model(self, name: str) -> TunedModel | None:
        """The named rung's trained model (built, trained only when asked for its engine); None for a rung that
        changes no weights."""
        ...


@dataclass(frozen=True)
class RungContext:
    """What a rung may use to build its predictor."""

    engine: Engine
    prompts: PromptBuilder
    task_type: str
    labels: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    model_fingerprint: str
    seed: int
    task_dir: Path = Path(".")
    cache_dir: Path = Path(".advisor")
    embedder: Callable[[], Any] | None = None  # shared, loaded on first use
    model_path: str = ""  # where the base model's weights are (tuned rungs reload or quantize it)
    model_name: str = ""
    device: str = "cpu"
    training_progress: TrainingProgress | None = None  # who hears training steps, trials and evaluations
    primary_metric: str = ""  # the metric that ranks rungs (task_metrics.choose_primary_metric); "" = type default
    remote: Answerer | None = None  # an endpoint that answers this rung's prompts instead of the local engine
    data_files: Mapping[str, Path] = field(default_factory=dict)  # the task's other data (preferences, unlabelled)
    other_rungs: OtherRungs | None = None  # the task's rungs by name (a teacher), when the caller offers them
    memo: AnswerMemo | None = None  # answers shared by alternatives chosen among on validation (same prompts)
    observer: PromptObserver | None = None  # told every prompt sent to the model (`advisor prompt` shows them)

    def answerer(self) -> Answerer:
        """Where a prompting rung's prompts are answered: the endpoint it names, else the local engine."""
        answerer: Answerer = self.remote or LocalAnswerer(self.engine, self.prompts, self.model_fingerprint)
        if self.observer is not None:
            answerer = ObservedAnswerer(answerer, self.observer)
        return MemoAnswerer(answerer, self.memo) if self.memo is not None else answerer

    def resolve(self, path: str) -> Path:
        """A path from the task file, relative to the task's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.task_dir / candidate


Factory = Callable[[Any, RungContext], Predictor]


@dataclass(frozen=True)
class RungType:
    """A registered rung: its name, its options model and its factory."""

    kind: str
    config_model: type[RungConfig]
    build: Factory
    sweep: tuple[str, ...] = ()  # options whose list value means one rung per value
    step: int = 0  # place on the ladder: 0 prompt, 1 demonstrations, 2 retrieval, 3 adapter, 4 full weights
    remote: bool = False  # answers through context.answerer(), so `endpoint:` can move it to an endpoint

    def __post_init__(self) -> None:
        if self.step not in LADDER_STEPS:
            raise ValueError(f"rung '{self.kind}': step must be one of {sorted(LADDER_STEPS)}")

    @property
    def changes_weights(self) -> bool:
        """From the adapter step on (LADDER_STEPS), a rung trains weights of its own."""
        return self.step >= ADAPTER_STEP

    def parse(self, options: dict[str, Any], where: str) -> RungConfig:
        """Validate options; the first problem is one line naming the option."""
        try:
            return self.config_model(**options)
        except ValidationError as error:
            raise InputError(f"{where}.{describe_validation_error(error, self.config_model, 'options')}") from None


RUNGS: Registry[RungType] = Registry("rung", "ladder.rungs")


def rung(
    kind: str, config: type[C], sweep: tuple[str, ...] = (), *, step: int, remote: bool = False
) -> Callable[[Callable[[C, RungContext], Predictor]], Callable[[C, RungContext], Predictor]]:
    """Register a rung factory under `kind` with its options model, sweepable options and ladder step.

    The step orders rungs by how costly and hard to undo adopting them is (see LADDER_STEPS); the
    advisor walks the ladder upwards and ships the first rung that is not clearly beaten. `remote`
    declares that the rung answers through `RungContext.answerer()`, so `endpoint:` may move it.
    """

    def register(factory: Callable[[C, RungContext], Predictor]) -> Callable[[C, RungContext], Predictor]:
        RUNGS.add(kind, RungType(kind, config, factory, sweep, step, remote), origin=factory.__module__)
        return factory

    return register


def get_rung(kind: str, where: str = "rungs") -> RungType:
    """The registered rung of this name; an unknown name lists the close matches."""
    return RUNGS.get(kind, where)
