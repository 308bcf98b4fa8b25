"""The predictor every tuned rung shares: search, train or load on first use, then answer like zero_shot.

A tuned rung trains on the task's train split (validation carved from it when the task has none),
saves the adapter or model with its card under a content hash of base model, data and options, and
is evaluated with the same short prompt as zero_shot: needing no demonstrations is the point.
The parts it composes: what is tuned and how it answers (tuning/tuning_task.py), the artifacts' keys,
folders and loading (tuning/artifact.py), training (tuning/trainer.py), the search (tuning/tuned_search.py).
The options live in tuning/options.py, the rows it trains on in tuning/rows.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from harness.cards import AdapterCard
from harness.data.hashing import content_hash
from harness.inference.answering import resolve_mode
from harness.inference.engine import Engine
from harness.registry import caller_module
from harness.rungs import RUNGS, Factory, Predictor, PromptAnswering, RungContext, RungType, TunedModel
from harness.types import Example, Output
from tuning.artifact import TunedArtifacts
from tuning.methods import standalone_model
from tuning.options import LoraOptions, TuneConfig, VirtualTokenOptions
from tuning.registry import Options, TuningMethod, export_form, register_method
from tuning.search import SearchResult
from tuning.spaces import Dimension
from tuning.trainer import Trainer
from tuning.tuned_search import TunedSearch
from tuning.tuning_task import TuningTask

__all__ = [
    "LoraOptions",
    "TuneConfig",
    "TunedPredictor",
    "VirtualTokenOptions",
    "tuned_rung",
]  # what rung plug-ins import


class TunedPredictor:
    """Searches (or trains once, or loads) on first use, then answers like zero_shot with the tuned model.

    With `search` on, each trial is a fixed configuration trained and judged on the validation split;
    the chosen trial's artifact is the rung's. The test split is never seen before that.
    """

    def __init__(self, method: str, config: TuneConfig, context: RungContext):
        self.task = TuningTask.of(method, config, context)
        self.artifacts = TunedArtifacts(self.task)
        self.trainer = Trainer(self.task, self.artifacts)
        self.search = TunedSearch(self.task, self.trainer)
        self._engine: Engine | None = None

    @property
    def config(self) -> TuneConfig:
        """The rung's options."""
        return self.task.config

    @property
    def space(self) -> dict[str, Dimension]:
        """What its search explores (empty: a fixed configuration)."""
        return self.task.space

    # ---- identity -----------------------------------------------------------------------------

    def artifact_key(self, config: TuneConfig | None = None) -> str:
        """Base model, data, prompt, method, options, selection metric and seed: what determines the weights."""
        return self.artifacts.key(config)

    def fingerprint(self) -> str:
        """The artifact (or the search that chooses it) plus the evaluation options."""
        return content_hash(self.artifact_key(), self.config.mode, self.config.max_new_tokens)

    @property
    def artifact_dir(self) -> Path:
        """The folder of the rung's artifact: the chosen trial's when it searched."""
        return self.artifacts.folder(self.search.chosen())

    @property
    def trained_now(self) -> bool:
        """Whether this process trained the artifact (or a trial of its search)."""
        return self.trainer.trained_now

    @property
    def mergeable(self) -> bool:
        """A LoRA adapter over the full-precision base merges into it; the other methods' artifacts do not."""
        return self.task.spec.mergeable

    @property
    def answering(self) -> PromptAnswering:
        """It answers in the tuned zero_shot prompt, scoring the labels or generating, as `mode` says."""
        mode = resolve_mode(self.config.mode, self.task.context.labels, self.task.method)
        return PromptAnswering(mode, self.config.max_new_tokens)

    @property
    def exports_as(self) -> Literal["merged", "whole"] | None:
        """A method that saves the whole model exports it as it is; a mergeable adapter, merged into its base."""
        return export_form(self.task.spec)

    def standalone(self) -> Any:
        """The tuned model as one plain model (searched, trained or loaded first)."""
        return standalone_model(self.engine().model, self.exports_as)

    def search_result(self) -> SearchResult | None:
        """The finished search (every trial, the choice, warnings); None for a fixed run or before it ran."""
        return self.search.result()

    def search_family(self) -> str | None:
        """The method's family when this rung searches and may start from (or warm-start) its siblings."""
        return self.search.family()

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """Epochs this rung is expected to train, over all trials of its search (for `--plan`); a search of a
        family the run has already searched is warm-started and runs a quarter of the trials."""
        return self.search.planned_epochs(searched)

    def epoch_work(self) -> tuple[int, int]:
        """(tokens one epoch trains on, the shared prefix counted per row; validation examples judged per epoch)."""
        return self.trainer.epoch_work()

    def training_rate(self, rows: int) -> float:
        """Useful tokens per second of this method on this machine (for `--plan`)."""
        return self.trainer.training_rate(rows)

    # ---- answering ----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Search, train or load the tuned model before any request is timed."""
        self.engine()

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """Answer with the tuned model and the zero_shot prompt (without the label list)."""
        return self.task.answer_with(self.engine(), examples)

    def tuned(self) -> TunedModel | None:
        """This predictor is its own trained model."""
        return self

    def reseeded(self, seed: int) -> TunedPredictor:
        """The chosen configuration (no search), trained from `seed`: adapter initialisation, batch order and
        dropout change; data, options and early stopping on validation stay. Stored under its own key."""
        return TunedPredictor(self.task.method, self.search.chosen(), replace(self.task.context, seed=seed))

    def engine(self) -> Engine:
        """An engine over the tuned model, searching or training it first when nothing is stored."""
        if self._engine is None:
            if self.task.space:
                self.search.run()
            model = self.trainer.obtain(self.search.chosen())
            if self.task.space:
                self.search.record_on_card()
            self._engine = self.task.engine_for(model)
        return self._engine

    # ---- cards --------------------------------------------------------------------------------

    def card(self) -> AdapterCard | None:
        """The artifact's card (training facts, hyperparameters, losses, the search); None before training."""
        if self.task.space and self.search.result() is None:
            return None
        return self.artifacts.card(self.artifact_dir)

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """Write the evaluated metrics into the card."""
        if self.card() is not None:
            self.artifacts.update_card(self.artifact_dir, metrics=metrics)


def tuned_rung(
    method: TuningMethod[Options],
    *,
    config: type[Options],  # the options its wrap function takes (mypy checks that the two agree)
    step: int,
    sweep: tuple[str, ...] = (),
    build: Factory | None = None,
) -> TuningMethod[Options]:
    """Register the tuned rung `method.name`: its options model, ladder step and sweepable options, and the
    tuning method that trains it. `build` makes its predictor (default: a TunedPredictor of the method)."""
    origin = caller_module()
    RUNGS.add(method.name, RungType(method.name, config, build or _tuned_predictor(method.name), sweep, step), origin)
    return register_method(method, origin)


def _tuned_predictor(name: str) -> Factory:
    def build(config: Any, context: RungContext) -> Predictor:
        return TunedPredictor(name, config, context)

    return build
