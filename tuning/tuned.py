"""What every tuned rung shares: options, the cached artifact, training, and answering with it.

A tuned rung trains on the task's train split (validation carved from it when the task has none),
saves the adapter or model with its card under a content hash of base model, data and options, and
is evaluated with the same short prompt as zero_shot: needing no demonstrations is the point.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, ValidationError, field_validator

from harness.cards import AdapterCard, TrainingReport
from harness.data.hashing import content_hash
from harness.distributed import group_lock, writes_files
from harness.errors import InputError
from harness.inference.answering import answer, resolve_mode
from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder
from harness.metrics.scoring import scorer_for
from harness.metrics.task_metrics import metric_names, point_metric, primary_metric
from harness.rungs import RequestShape, RungConfig, RungContext, TunedModel, answer_tokens
from harness.types import Example, Output, Record
from tuning.artifacts import is_complete, read_card, save_artifact, write_card
from tuning.loop import EpochObserver, LoopSettings, Pruned, TrainRow, Validation, train
from tuning.methods import count_parameters, quantized_base, trainable_model
from tuning.registry import get_method
from tuning.search import SearchResult, TrialOutcome, expected_epochs, read_result, run_search, search_limit
from tuning.search_group import run_search_in_group
from tuning.spaces import Dimension, SearchOptions, default_space
from tuning.virtual_tokens import soft_prefix, virtual_token_type

EVALUATION_ONLY = ("mode", "max_new_tokens", "search")


class TuneConfig(RungConfig):
    """Training options shared by every tuned rung."""

    epochs: int = Field(default=5, ge=1, le=100)  # the most epochs; early stopping on validation picks the best
    learning_rate: float | None = Field(default=None, gt=0, le=1)  # None: searched, or the method's default
    batch_tokens: int = Field(default=2048, ge=64, le=1_000_000)
    max_batch_size: int = Field(default=16, ge=1, le=1024)
    patience: int = Field(default=2, ge=1, le=100)
    max_length: int = Field(default=512, ge=16, le=32768)
    checkpoint_every: int = Field(default=10, ge=1)
    mode: Literal["auto", "score", "generate"] = "auto"
    max_new_tokens: int = Field(default=16, ge=1, le=4096)
    search: SearchOptions | Literal[False] = Field(default_factory=SearchOptions)

    def request_shape(self, zero_tokens: float, demo_tokens: float, has_labels: bool) -> RequestShape:
        """The zero_shot prompt (the tuned model needs no demonstrations); generated tokens when it generates."""
        return RequestShape(zero_tokens, new_tokens=answer_tokens(self.mode, self.max_new_tokens, has_labels))

    def training_max_length(self) -> int | None:
        """Training rows longer than this are skipped (the audit counts them)."""
        return self.max_length

    @field_validator("search", mode="before")
    @classmethod
    def _search_switch(cls, value: Any) -> Any:
        return {} if value is True or value is None else value


class LoraOptions(TuneConfig):
    """LoRA: rank r (sweepable: `r: [4, 16, 64]`), alpha (default 2r), dropout, target modules."""

    r: int = Field(default=16, ge=1, le=1024)
    alpha: int | None = Field(default=None, ge=1)
    # No dropout by default: on CPU its random masks take a fifth of a LoRA step, and early stopping on
    # validation already guards against over-fitting.
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class VirtualTokenOptions(TuneConfig):
    """Prompt or prefix tuning: how many virtual tokens to learn."""

    num_virtual_tokens: int = Field(default=20, ge=1, le=512)


def tuned_prompts(task_prompts: PromptBuilder) -> PromptBuilder:
    """The prompt every tuned rung trains and answers with: the task's, without the label list.

    A tuned rung learns the labels: listing them in every prompt only costs tokens.
    """
    return PromptBuilder(task_prompts.tokenizer, replace(task_prompts.format, list_labels=False))


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
        self.metric = _selection_metric(method, config, context.task_type, context.primary_metric)
        self.space = _search_space(method, config)
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

    def planned_epochs(self) -> float:
        """Epochs this rung is expected to train, over all trials of its search (for `--plan`)."""
        if not self.space or self.config.search is False:
            return float(self.config.epochs)
        return expected_epochs(self.config.search, self.config.epochs, search_limit(self.space, self.config.search))

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
        """(tokens one epoch trains on, the shared prefix counted per row; validation examples per epoch)."""
        prefix, rows, validation = self.encoded_rows()
        return sum(len(prefix) + len(row.tokens) for row in rows), len(validation)

    def training_rate(self, rows: int) -> float:
        """Useful tokens per second of this method, from a step on `rows` train rows (after a warm-up step)."""
        model = self.fresh_trainable_model()
        prefix, encoded, _ = self.encoded_rows()
        sample = encoded[:rows]
        settings = LoopSettings(epochs=1, batch_tokens=10**6, max_batch_size=len(sample), checkpoint_every=10**6)
        pad = self.context.engine.pad_id
        with tempfile.TemporaryDirectory() as folder:
            train(model, sample[:2], Validation(), settings, Path(folder) / "warm", pad, prefix=prefix)
            started = time.perf_counter()
            report = train(model, sample, Validation(), settings, Path(folder) / "timed", pad, prefix=prefix)
        return report.useful_tokens / max(time.perf_counter() - started, 1e-9)

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
        search = self.config.search
        assert search is not False  # a space exists only when the search is on
        folder = self._search_dir()
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):  # a second run on this store waits, then reads the result
            result = read_result(folder)
            if result is None:
                epochs, seed = self.config.epochs, self.context.seed
                study = partial(run_search, folder, self.space, search, self.metric, epochs, seed)
                result = run_search_in_group(study, self._run_trial)
                self._keep_only_chosen(result)
            self._search = result

    def _card_search(self) -> None:
        """The chosen artifact's card carries the whole search: every trial, the choice, the warnings."""
        result = self.search_result()
        card = self.card()
        if result is not None and card is not None and card.search is None:
            write_card(self.artifact_dir, card.model_copy(update={"search": result.to_json()}))

    def _run_trial(self, params: dict[str, Any], observe: EpochObserver) -> TrialOutcome:
        config = self._concrete(params)
        folder = self._artifact_dir(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):
            if is_complete(folder):  # trained before a kill, or by an earlier search with the same trial
                report = read_card(folder).training
                for epoch in range(report.epochs_run):
                    observe(epoch + 1, _epoch_score(report, epoch))
            else:
                _, report = self._train(config, folder, observe)
        return TrialOutcome(
            validation_metrics=list(report.validation_metrics),
            validation_losses=list(report.validation_losses),
            best_epoch=report.best_epoch,
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
        options["learning_rate"] = config.learning_rate or self.spec.learning_rate
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

    def _train(self, config: TuneConfig, folder: Path, observe: EpochObserver | None) -> tuple[Any, TrainingReport]:
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
            patience=config.patience,
            checkpoint_every=config.checkpoint_every,
            seed=self.context.seed,
        )
        validation = Validation(validation_rows, self.validation_metric(), self.metric)
        partial = folder.with_name(folder.name + ".partial")
        progress = self.context.training_progress
        try:
            report = train(
                model,
                rows,
                validation,
                settings,
                partial,
                self.context.engine.pad_id,
                prefix=prefix,
                progress=(lambda *p: progress(self.method, *p)) if progress else None,
                on_epoch=observe,
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
        if self.metric == "loss" or not self.validation_set:
            return None
        examples = self.validation_set
        encoded = [self.prompts.split(example) for example in examples]
        labels = self.context.labels
        mode = resolve_mode(self.config.mode, labels, self.method)
        scorer = scorer_for(self.context.task_type, labels)
        task_type, metric = self.context.task_type, self.metric

        def measure(model: Any) -> float:
            outputs = answer(self.engine_for(model), self.prompts, encoded, labels, mode, self.config.max_new_tokens)
            records = [Record(e, o, scorer(e, o)) for e, o in zip(examples, outputs, strict=True)]
            return point_metric(task_type, metric, records, labels)

        return measure

    def load_adapter(self, folder: Path, trainable: bool = False) -> Any:
        """A stored artifact of this method over a fresh copy of the base (trainable: to train it further)."""
        if self.spec.artifact == "model":
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(
                folder, use_safetensors=True, dtype=self.context.engine.model.dtype
            )
            return model.to(self.context.engine.device).eval()
        from peft import PeftModel

        base = self._base() if self.spec.base == "quantized" else _copy(self.context.engine.model)
        adapter = PeftModel.from_pretrained(base, str(folder), use_safetensors=True, is_trainable=trainable)
        return adapter if trainable else adapter.eval()


def _selection_metric(method: str, config: TuneConfig, task_type: str, primary: str) -> str:
    """The validation metric that picks epochs and trials: the task's primary metric unless the task says otherwise."""
    wanted = config.search.metric if config.search else "primary"
    if wanted == "primary":
        return primary or primary_metric(task_type)
    known = metric_names(task_type)
    if wanted != "loss" and wanted not in known:
        choices = ", ".join(["primary", "loss", *known])
        raise InputError(f"rungs.{method}.search.metric: '{wanted}' is not a {task_type} metric (one of: {choices})")
    return wanted


def _search_space(method: str, config: TuneConfig) -> dict[str, Dimension]:
    """The method's default space without the options the task file fixed, plus the task's own space."""
    if config.search is False:
        return {}
    fields = type(config).model_fields
    fixed = config.model_fields_set - {"search"}
    space: dict[str, Dimension] = {k: v for k, v in default_space(method).items() if k not in fixed}
    for name, dimension in config.search.space.items():
        if name not in fields or name in EVALUATION_ONLY:
            options = ", ".join(sorted(set(fields) - set(EVALUATION_ONLY)))
            raise InputError(f"rungs.{method}.search.space.{name}: not a training option (one of: {options})")
        if name in fixed:
            raise InputError(f"rungs.{method}.search.space.{name}: also set as a fixed option; keep one of the two")
        space[name] = _validated_choices(method, config, name, dimension) if isinstance(dimension, list) else dimension
    return space


def _validated_choices(method: str, config: TuneConfig, name: str, choices: list[Any]) -> list[Any]:
    """Each choice as the option itself would take it (YAML reads `1e-3` as text; the option reads a number)."""
    checked = []
    for index, choice in enumerate(choices):
        try:
            option = type(config).model_validate({**config.model_dump(), "search": False, name: choice})
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            raise InputError(f"rungs.{method}.search.space.{name}[{index}]: {problem} (got {choice!r})") from None
        checked.append(getattr(option, name))
    return checked


def _epoch_score(report: TrainingReport, epoch: int) -> float:
    if report.validation_metrics:
        return report.validation_metrics[epoch]
    return -report.validation_losses[epoch]


def shared_prefix(prompts: PromptBuilder, examples: Sequence[Example]) -> tuple[int, ...]:
    """The prompt prefix every example shares (the system turn), or () when they differ."""
    prefixes = {tuple(prompts.split(example)[0]) for example in examples}
    return next(iter(prefixes)) if len(prefixes) == 1 else ()


def training_rows(
    prompts: PromptBuilder, examples: Sequence[Example], max_length: int, prefix: Sequence[int] = ()
) -> list[TrainRow]:
    """Prompt (after the shared prefix) + answer tokens; loss on the answer only."""
    rows = []
    for example in examples:
        head, query = prompts.split(example)
        answer_tokens = prompts.choice_tokens(example.target)
        tokens = (*(() if prefix else head), *query, *answer_tokens)
        if len(prefix) + len(tokens) <= max_length:
            rows.append(TrainRow(tokens=tuple(tokens), completion=len(answer_tokens)))
    return rows


def _copy(model: Any) -> Any:
    import copy

    return copy.deepcopy(model)


def _remove(folder: Path) -> None:
    import shutil

    if writes_files():  # under a launch, rank 0 owns the files
        shutil.rmtree(folder, ignore_errors=True)
