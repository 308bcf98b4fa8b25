"""Training a tuning task's configurations: a fresh trainable model, the encoded rows, the loop, the card.

One fixed configuration trains into its own folder (a search trial is one), judged on validation as
the rung answers the test; `obtain` loads it instead when it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.cards import AdapterCard, TrainingReport
from harness.data.hashing import content_hash
from harness.distributed import group_lock
from harness.errors import InputError
from harness.types import Example
from tuning.artifact import TunedArtifacts, remove
from tuning.artifacts import is_complete, read_card, save_artifact
from tuning.judging import Evaluation, Judge, Judgement
from tuning.loop import EvaluationObserver, LoopSettings, Pruned, TrainRow, Validation, train
from tuning.methods import count_parameters, trainable_model
from tuning.micro_batch import MicroBatchCache, micro_batch_tokens
from tuning.options import EVALUATION_ONLY, TuneConfig
from tuning.rows import shared_prefix, training_rows
from tuning.search import TrialOutcome
from tuning.training_rate import training_rate
from tuning.tuning_task import EncodedRows, TuningTask
from tuning.validation_judge import validation_judge


class Trainer:
    """Trains (or loads) the task's configurations into their artifact folders."""

    def __init__(self, task: TuningTask, artifacts: TunedArtifacts | None = None):
        self.task = task
        self.artifacts = artifacts or TunedArtifacts(task)
        self.trained_now = False  # this process trained some configuration
        self._encoded: EncodedRows | None = None

    def fresh_model(self, config: TuneConfig | None = None) -> Any:
        """The base wrapped for this method with these options, seeded, before any training."""
        task = self.task
        torch.manual_seed(task.context.seed)  # adapter initialisation is random: same seed, same adapter
        options = task.with_defaults(config or task.config)
        return trainable_model(task.method, self.artifacts.base(), options, init_tokens=self._init_tokens())

    def _init_tokens(self) -> list[int]:
        """Prompt tuning starts from the instruction's tokens (or the zero_shot prompt's when there is none)."""
        task = self.task
        if not task.spec.starts_from_instruction:
            return []
        text = task.prompts.format.system_text()
        if text:
            return list(task.context.engine.tokenizer.encode(text, add_special_tokens=False))
        return list(task.prompts.encode(Example(id="", input="", target="")))

    def encoded_rows(self) -> EncodedRows:
        """The shared prefix, train rows and validation rows that training reads (encoded once per trainer:
        every trial, the validation judge and the plan read the same rows)."""
        if self._encoded is None:
            task = self.task
            prefix = shared_prefix(task.prompts, (*task.train_set, *task.validation_set))
            rows = training_rows(task.prompts, task.train_set, task.config.max_length, prefix)
            validation = training_rows(task.prompts, task.validation_set, task.config.max_length, prefix)
            self._encoded = prefix, rows, validation
        return self._encoded

    def epoch_work(self) -> tuple[int, int]:
        """(tokens one epoch trains on, the shared prefix counted per row; validation examples judged per epoch)."""
        prefix, rows, _ = self.encoded_rows()
        judged = len(self.task.validation_set) * self.task.config.evaluations_per_epoch
        return sum(len(prefix) + len(row.tokens) for row in rows), judged

    def training_rate(self, rows: int) -> float:
        """Useful tokens per second of this method on this machine (for `--plan`)."""
        return training_rate(self, rows)

    def micro_batch_tokens(self, config: TuneConfig, model: Any, rows: list[TrainRow], prefix: Sequence[int]) -> int:
        """Padded tokens per micro-batch: the config's number, else 512 off CUDA and, on CUDA, the size measured
        once for this base, method, row length and card (kept in the store's micro_batches.json)."""
        ctx = self.task.context
        cache = MicroBatchCache(ctx.cache_dir / "micro_batches.json")
        return micro_batch_tokens(
            config.micro_batch_tokens,
            model,
            rows,
            ctx.engine.pad_id,
            prefix,
            cache=cache,
            model_key=ctx.model_fingerprint,
            method=self.task.method,
        )

    def validation_judge(self) -> Judge | None:
        """The model's validation loss and metric, the metric answered exactly as the rung answers the test."""
        return validation_judge(self)

    def validation_metric(self) -> Callable[[Any], float] | None:
        """The task's metric on the validation split, answered as the rung answers the test; None for loss."""
        judge = self.validation_judge()
        if judge is None or self.task.metric == "loss":
            return None

        def metric(model: Any) -> float:
            value = judge(model).metric
            assert value is not None  # a judge measures every metric but the loss
            return value

        return metric

    def obtain(self, config: TuneConfig) -> Any:
        """The trained model of a fixed configuration: loaded when stored, else trained (deterministically)."""
        folder = self.artifacts.folder(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):  # a second run on this store waits, then loads
            if is_complete(folder):
                return self.artifacts.load(folder)
            model, _ = self.train(config, folder, None)
            return model

    def trial(self, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome:
        """One search trial: the configuration at `params` trained (or read back when stored), each judgement
        told to `observe`."""
        config = self.task.concrete(params)
        folder = self.artifacts.folder(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):
            if is_complete(folder):  # trained before a kill, or by an earlier search with the same trial
                report = read_card(folder).training
                metrics: list[float | None] = [*report.validation_metrics] or [None] * len(report.validation_losses)
                judged = zip(report.validation_losses, metrics, report.evaluation_epochs, strict=True)
                for index, (loss, metric, epoch) in enumerate(judged, 1):
                    observe(Evaluation(index, epoch, Judgement(loss, metric)))
            else:
                _, report = self.train(config, folder, observe)
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

    def train(self, config: TuneConfig, folder: Path, observe: EvaluationObserver | None) -> tuple[Any, TrainingReport]:
        """Train this fixed configuration and save it with its card into `folder`."""
        task, ctx = self.task, self.task.context
        options = task.with_defaults(config)
        model = self.fresh_model(config)
        prefix, rows, validation_rows = self.encoded_rows()
        if not rows:
            raise InputError(f"rungs.{task.method}: no train example fits max_length {config.max_length}")
        assert options.learning_rate is not None  # with_defaults filled it
        settings = LoopSettings(
            epochs=config.epochs,
            learning_rate=options.learning_rate,
            batch_tokens=config.batch_tokens,
            max_batch_size=config.max_batch_size,
            micro_batch_tokens=self.micro_batch_tokens(config, model, rows, prefix),
            evaluations_per_epoch=config.evaluations_per_epoch,
            patience=config.patience,
            extra_epochs=config.extension(),
            checkpoint_every=config.checkpoint_every,
            seed=ctx.seed,
        )
        validation = Validation(validation_rows, self.validation_judge(), task.metric)
        partial = folder.with_name(folder.name + ".partial")
        progress = ctx.training_progress

        def heard(evaluation: Evaluation) -> None:
            if progress:
                judged = evaluation.judgement
                progress.evaluated(task.method, evaluation.epoch, judged.loss, judged.metric, task.metric)
            if observe:
                observe(evaluation)

        try:
            report = train(
                model,
                rows,
                validation,
                settings,
                partial,
                ctx.engine.pad_id,
                prefix=prefix,
                progress=(lambda *p: progress.training(task.method, *p)) if progress else None,
                on_evaluation=heard,
            )
        except Pruned:
            remove(partial)
            raise
        trainable, total = count_parameters(model)
        card = AdapterCard(
            method=task.method,
            base_model=ctx.model_name,
            base_fingerprint=ctx.model_fingerprint,
            data_hash=content_hash([(e.id, e.input, e.target) for e in task.train_set]),
            train_examples=len(rows),
            validation_examples=len(validation_rows),
            skipped_too_long=len(task.train_set) - len(rows),
            hyperparameters={k: v for k, v in options.model_dump().items() if k not in EVALUATION_ONLY},
            trainable_parameters=trainable,
            total_parameters=total,
            trainable_share=trainable / max(total, 1),
            training=report,
            device=ctx.device,
        )
        save_artifact(folder, model, card)
        remove(partial)
        self.trained_now = True
        return model, report
