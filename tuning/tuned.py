"""What every tuned rung shares: the cached artifact, its search, training, and answering with it.

A tuned rung trains on the task's train split (validation carved from it when the task has none),
saves the adapter or model with its card under a content hash of base model, data and options, and
is evaluated with the same short prompt as zero_shot: needing no demonstrations is the point.
The options live in tuning/options.py, the rows it trains on in tuning/rows.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from harness.cards import AdapterCard, TrainingReport
from harness.data.hashing import content_hash
from harness.distributed import group_lock, writes_files
from harness.errors import InputError
from harness.inference.answering import answer, resolve_mode
from harness.inference.engine import Engine
from harness.inference.models import model_parameters
from harness.rungs import RungContext, TunedModel
from harness.types import Example, Output
from tuning.artifacts import is_complete, read_card, save_artifact, write_card
from tuning.judging import Evaluation, Judge, Judgement
from tuning.loop import EvaluationObserver, LoopSettings, Pruned, TrainRow, Validation, train
from tuning.methods import count_parameters, quantized_base, sharing_weights, trainable_model
from tuning.options import EVALUATION_ONLY, LoraOptions, TuneConfig, VirtualTokenOptions, rung_space, selection_metric
from tuning.registry import get_method
from tuning.rows import shared_prefix, training_rows, tuned_prompts
from tuning.search import (
    SearchPlan,
    SearchResult,
    TrialOutcome,
    WarmStart,
    expected_epochs,
    read_result,
    run_search,
    stopping_epochs,
)
from tuning.search_group import run_search_in_group
from tuning.spaces import Dimension, Range, center, prior_learning_rate
from tuning.training_rate import training_rate
from tuning.validation_judge import validation_judge
from tuning.virtual_tokens import soft_prefix, virtual_token_type
from tuning.warm_start import find_choice, record_choice

__all__ = ["LoraOptions", "TuneConfig", "TunedPredictor", "VirtualTokenOptions"]  # what rung plug-ins import


class TunedPredictor:
    """Searches (or trains once, or loads) on first use, then answers like zero_shot with the tuned model.

    With `search` on, each trial is a fixed configuration trained and judged on the validation split;
    the chosen trial's artifact is the rung's. The test split is never seen before that.
    """

    def __init__(self, method: str, config: TuneConfig, context: RungContext):
        self.method = method
        self.spec = get_method(method)
        self.config = config
        self.context = context
        self.prompts = tuned_prompts(context.prompts)
        if not context.train:
            raise InputError("rungs: a tuned rung needs a train split (data.train or data.path)")
        self.train_set, self.validation_set = context.train, context.validation
        self.metric = selection_metric(method, config, context.task_type, context.primary_metric)
        self.parameters = model_parameters(context.model_path)  # the base's size sets the learning-rate prior
        self.space = rung_space(method, config, self.parameters)
        if self.space and not self.validation_set:
            raise InputError(
                f"rungs.{method}.search: needs a validation split (data.validation, or data.validation_size > 0); "
                "or set search: false"
            )
        self._engine: Engine | None = None
        self._search: SearchResult | None = None
        self.trained_now = False

    # ---- identity -----------------------------------------------------------------------------

    def artifact_key(self, config: TuneConfig | None = None) -> str:
        """Base model, data, prompt, method, options, selection metric and seed: what determines the weights."""
        config = config or self.config
        ctx = self.context
        options = {k: v for k, v in config.model_dump().items() if k not in EVALUATION_ONLY}
        search = config.search.model_dump() if config.search and self.space else None
        data = [(e.id, e.input, e.target) for e in (*self.train_set, *self.validation_set)]
        fmt = asdict(self.prompts.format)
        return content_hash(self.method, options, search, self.metric, ctx.model_fingerprint, fmt, data, ctx.seed)

    def fingerprint(self) -> str:
        """The artifact (or the search that chooses it) plus the evaluation options."""
        return content_hash(self.artifact_key(), self.config.mode, self.config.max_new_tokens)

    @property
    def artifact_dir(self) -> Path:
        """The folder of the rung's artifact: the chosen trial's when it searched."""
        return self._artifact_dir(self._resolved_config())

    def _artifact_dir(self, config: TuneConfig) -> Path:
        return self.context.cache_dir / "adapters" / self.artifact_key(config)

    def _search_dir(self) -> Path:
        return self.context.cache_dir / "searches" / self.artifact_key()

    def _resolved_config(self) -> TuneConfig:
        """The configuration whose weights answer: the fixed one, or the search's choice once it is known."""
        if not self.space:
            return self.config
        result = self.search_result()
        if result is None:
            raise RuntimeError("the rung's search has not run yet: call prepare() first")
        return self._concrete(result.chosen_params)

    def _concrete(self, params: dict[str, Any]) -> TuneConfig:
        return self.config.model_copy(update={**params, "search": False})

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """Epochs this rung is expected to train, over all trials of its search (for `--plan`); a search of a
        family the run has already searched is warm-started and runs a quarter of the trials."""
        stopping = stopping_epochs(self.config.epochs, self.config.patience)
        if not self.space or self.config.search is False:
            return stopping
        plan = self.search_plan()
        family = self.search_family()
        if plan.warm_start is None and family in searched:
            plan = replace(plan, warm_start=WarmStart(family, {}, ""))
        return expected_epochs(plan, stopping)

    def search_family(self) -> str | None:
        """The method's family when this rung searches and may start from (or warm-start) its siblings."""
        search = self.config.search
        return self.spec.family if self.space and search is not False and search.warm_start else None

    def search_plan(self) -> SearchPlan:
        """What the search explores, and where it starts: the method's prior, or a finished sibling search's choice."""
        search = self.config.search
        assert search is not False  # a space exists only when the search is on
        first = {name: self._first_value(name, dimension) for name, dimension in self.space.items()}
        warm = None
        if self.search_family():
            warm = find_choice(self.context.cache_dir, self._family_key(), self._search_dir().name, self.space)
        return SearchPlan(
            space=self.space,
            options=search,
            metric=self.metric,
            max_epochs=self.config.epochs,
            evaluations_per_epoch=self.config.evaluations_per_epoch,
            seed=self.context.seed,
            first={**first, **(warm.params if warm else {})},
            warm_start=warm,
        )

    def _first_value(self, name: str, dimension: Dimension) -> Any:
        """The first trial's value: the learning-rate prior when the range holds it, else the middle of the range."""
        prior = prior_learning_rate(self.method, self.parameters)
        if name == "learning_rate" and isinstance(dimension, Range) and dimension.low <= prior <= dimension.high:
            return prior
        return center(dimension)

    def _family_key(self) -> str:
        """What makes searches of the method's family comparable: base, data, prompt, selection metric, seed."""
        ctx = self.context
        data = [(e.id, e.input, e.target) for e in (*self.train_set, *self.validation_set)]
        fmt = asdict(self.prompts.format)
        return content_hash(self.spec.family, ctx.model_fingerprint, data, fmt, self.metric, ctx.seed)

    def search_result(self) -> SearchResult | None:
        """The finished search (every trial, the choice, warnings); None for a fixed run or before it ran."""
        if self._search is None and self.space:
            self._search = read_result(self._search_dir())
        return self._search

    # ---- answering ----------------------------------------------------------------------------

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """Answer with the tuned model and the zero_shot prompt (without the label list)."""
        return self.answer_with(self.engine(), examples)

    def answer_with(self, engine: Engine, examples: Sequence[Example]) -> list[Output]:
        """Answer as this rung answers, with the model behind `engine` (another stage's adapter, say)."""
        encoded = [self.prompts.split(example) for example in examples]
        mode = resolve_mode(self.config.mode, self.context.labels, self.method)
        return answer(engine, self.prompts, encoded, self.context.labels, mode, self.config.max_new_tokens)

    def prepare(self) -> None:
        """Search, train or load the tuned model before any request is timed."""
        self.engine()

    def tuned(self) -> TunedModel | None:
        """This predictor is its own trained model."""
        return self

    @property
    def mergeable(self) -> bool:
        """A LoRA adapter over the full-precision base merges into it; the other methods' artifacts do not."""
        return self.spec.mergeable

    def epoch_work(self) -> tuple[int, int]:
        """(tokens one epoch trains on, the shared prefix counted per row; validation examples judged per epoch)."""
        prefix, rows, _ = self.encoded_rows()
        judged = len(self.validation_set) * self.config.evaluations_per_epoch
        return sum(len(prefix) + len(row.tokens) for row in rows), judged

    def training_rate(self, rows: int) -> float:
        """Useful tokens per second of this method on this machine (for `--plan`)."""
        return training_rate(self, rows)

    def reseeded(self, seed: int) -> TunedPredictor:
        """The chosen configuration (no search), trained from `seed`: adapter initialisation, batch order and
        dropout change; data, options and early stopping on validation stay. Stored under its own key."""
        return TunedPredictor(self.method, self._resolved_config(), replace(self.context, seed=seed))

    def engine(self) -> Engine:
        """An engine over the tuned model, searching or training it first when nothing is stored."""
        if self._engine is None:
            if self.space:
                self._run_search()
            model = self._obtain(self._resolved_config())
            if self.space:
                self._card_search()
            self._engine = self.engine_for(model)
        return self._engine

    def engine_for(self, model: Any) -> Engine:
        """An engine that answers with this model (virtual tokens become a soft KV prefix)."""
        base = self.context.engine
        soft = soft_prefix(model) if virtual_token_type(model) else None
        return Engine(
            model.base_model if soft else model,
            base.tokenizer,
            max_batch_tokens=base.max_batch_tokens,
            max_batch_size=base.max_batch_size,
            soft_prefix=soft,
        )

    # ---- cards --------------------------------------------------------------------------------

    def card(self) -> AdapterCard | None:
        """The artifact's card (training facts, hyperparameters, losses, the search); None before training."""
        if self.space and self.search_result() is None:
            return None
        folder = self.artifact_dir
        return read_card(folder) if is_complete(folder) else None

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """Write the evaluated metrics into the card."""
        card = self.card()
        if card is not None:
            write_card(self.artifact_dir, card.model_copy(update={"metrics": metrics}))

    # ---- search and training ------------------------------------------------------------------

    def _run_search(self) -> None:
        folder = self._search_dir()
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):  # a second run on this store waits, then reads the result
            result = read_result(folder)
            if result is None:
                result = run_search_in_group(partial(run_search, folder, self.search_plan()), self._run_trial)
                self._keep_only_chosen(result)
                if self.spec.family:
                    record_choice(
                        self.context.cache_dir, self._family_key(), self.method, result.chosen_params, folder.name
                    )
            self._search = result

    def _card_search(self) -> None:
        """The chosen artifact's card carries the whole search: every trial, the choice, the warnings."""
        result = self.search_result()
        card = self.card()
        if result is not None and card is not None and card.search is None:
            write_card(self.artifact_dir, card.model_copy(update={"search": result.to_json()}))

    def _run_trial(self, number: int, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome:
        config = self._concrete(params)
        folder = self._artifact_dir(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        if self.context.training_progress:
            self.context.training_progress.trial(self.method, number, self.search_plan().trial_limit(), params)
        with group_lock(folder):
            if is_complete(folder):  # trained before a kill, or by an earlier search with the same trial
                report = read_card(folder).training
                metrics: list[float | None] = [*report.validation_metrics] or [None] * len(report.validation_losses)
                judged = zip(report.validation_losses, metrics, report.evaluation_epochs, strict=True)
                for index, (loss, metric, epoch) in enumerate(judged, 1):
                    observe(Evaluation(index, epoch, Judgement(loss, metric)))
            else:
                _, report = self._train(config, folder, observe)
        return TrialOutcome(
            validation_metrics=list(report.validation_metrics),
            validation_losses=list(report.validation_losses),
            evaluation_epochs=list(report.evaluation_epochs),
            best_evaluation=report.best_evaluation,
            epochs_run=report.epochs_run,
            steps=report.steps,
            seconds=report.seconds,
            artifact=folder.name,
        )

    def _keep_only_chosen(self, result: SearchResult) -> None:
        """Trial artifacts other than the chosen one are not used again (full fine-tunes are large)."""
        for trial in result.trials:
            if trial.number != result.chosen and trial.artifact:
                _remove(self.context.cache_dir / "adapters" / trial.artifact)

    def _obtain(self, config: TuneConfig) -> Any:
        """The trained model of a fixed configuration: loaded when stored, else trained (deterministically)."""
        folder = self._artifact_dir(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):  # a second run on this store waits, then loads
            if is_complete(folder):
                return self.load_adapter(folder)
            model, _ = self._train(config, folder, None)
            return model

    def _options(self, config: TuneConfig | None = None) -> dict[str, Any]:
        config = config or self.config
        options = config.model_dump()
        if isinstance(config, LoraOptions):
            options["alpha"] = config.alpha or 2 * config.r
        options["learning_rate"] = config.learning_rate or prior_learning_rate(self.method, self.parameters)
        return options

    def _init_tokens(self) -> list[int]:
        """Prompt tuning starts from the instruction's tokens (or the zero_shot prompt's when there is none)."""
        if not self.spec.starts_from_instruction:
            return []
        text = self.prompts.format.system_text()
        if text:
            return list(self.context.engine.tokenizer.encode(text, add_special_tokens=False))
        return list(self.prompts.encode(Example(id="", input="", target="")))

    def _base(self) -> Any:
        if self.spec.base == "quantized":
            return quantized_base(self.context.model_path, self.context.device)
        return self.context.engine.model

    def fresh_trainable_model(self, config: TuneConfig | None = None) -> Any:
        """The base wrapped for this method with these options, seeded, before any training."""
        torch.manual_seed(self.context.seed)  # adapter initialisation is random: same seed, same adapter
        return trainable_model(self.method, self._base(), self._options(config), init_tokens=self._init_tokens())

    def encoded_rows(self) -> tuple[tuple[int, ...], list[TrainRow], list[TrainRow]]:
        """The shared prefix, train rows and validation rows that training reads."""
        prefix = shared_prefix(self.prompts, (*self.train_set, *self.validation_set))
        rows = training_rows(self.prompts, self.train_set, self.config.max_length, prefix)
        validation = training_rows(self.prompts, self.validation_set, self.config.max_length, prefix)
        return prefix, rows, validation

    def _train(
        self, config: TuneConfig, folder: Path, observe: EvaluationObserver | None
    ) -> tuple[Any, TrainingReport]:
        options = self._options(config)
        model = self.fresh_trainable_model(config)
        prefix, rows, validation_rows = self.encoded_rows()
        if not rows:
            raise InputError(f"rungs.{self.method}: no train example fits max_length {config.max_length}")
        settings = LoopSettings(
            epochs=config.epochs,
            learning_rate=options["learning_rate"],
            batch_tokens=config.batch_tokens,
            max_batch_size=config.max_batch_size,
            evaluations_per_epoch=config.evaluations_per_epoch,
            patience=config.patience,
            extra_epochs=config.extension(),
            checkpoint_every=config.checkpoint_every,
            seed=self.context.seed,
        )
        validation = Validation(validation_rows, self.validation_judge(), self.metric)
        partial = folder.with_name(folder.name + ".partial")
        progress = self.context.training_progress

        def heard(evaluation: Evaluation) -> None:
            if progress:
                judged = evaluation.judgement
                progress.evaluated(self.method, evaluation.epoch, judged.loss, judged.metric, self.metric)
            if observe:
                observe(evaluation)

        try:
            report = train(
                model,
                rows,
                validation,
                settings,
                partial,
                self.context.engine.pad_id,
                prefix=prefix,
                progress=(lambda *p: progress.training(self.method, *p)) if progress else None,
                on_evaluation=heard,
            )
        except Pruned:
            _remove(partial)
            raise
        trainable, total = count_parameters(model)
        card = AdapterCard(
            method=self.method,
            base_model=self.context.model_name,
            base_fingerprint=self.context.model_fingerprint,
            data_hash=content_hash([(e.id, e.input, e.target) for e in self.train_set]),
            train_examples=len(rows),
            validation_examples=len(validation_rows),
            skipped_too_long=len(self.train_set) - len(rows),
            hyperparameters={k: v for k, v in options.items() if k not in EVALUATION_ONLY},
            trainable_parameters=trainable,
            total_parameters=total,
            trainable_share=trainable / max(total, 1),
            training=report,
            device=self.context.device,
        )
        save_artifact(folder, model, card)
        _remove(partial)
        self.trained_now = True
        return model, report

    def validation_metric(self) -> Any:
        """The task's metric on the validation split, answered as the rung answers the test; None for loss."""
        judge = self.validation_judge()
        if judge is None or self.metric == "loss":
            return None
        return lambda model: judge(model).metric

    def validation_judge(self) -> Judge | None:
        """The model's validation loss and metric, the metric answered exactly as the rung answers the test."""
        return validation_judge(self)

    def load_adapter(self, folder: Path, trainable: bool = False) -> Any:
        """A stored artifact of this method over a fresh copy of the base (trainable: to train it further)."""
        if self.spec.artifact == "model":
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(
                folder, use_safetensors=True, dtype=self.context.engine.model.dtype
            )
            return model.to(self.context.engine.device).eval()
        from peft import PeftModel

        base = self._base() if self.spec.base == "quantized" else sharing_weights(self.context.engine.model)
        adapter = PeftModel.from_pretrained(base, str(folder), use_safetensors=True, is_trainable=trainable)
        return adapter if trainable else adapter.eval()


def _remove(folder: Path) -> None:
    import shutil

    if writes_files():  # under a launch, rank 0 owns the files
        shutil.rmtree(folder, ignore_errors=True)
