"""Training a tuning task's configurations: a fresh trainable model, the encoded rows, the loop, the card.

One fixed configuration trains into its own folder (a search trial is one), judged on validation as
the rung answers the test; `obtain` loads it instead when it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch

from harness.cards import AdapterCard, TrainingReport
from harness.data.hashing import content_hash
from harness.distributed import barrier, current_ranks, group_lock
from harness.errors import InputError
from harness.types import Example
from tuning.artifact import TunedArtifacts, remove
from tuning.artifacts import is_complete, read_card, save_artifact
from tuning.judging import Evaluation, Judge, Judgement
from tuning.loop import (
    EvaluationObserver,
    LoopSettings,
    Pruned,
    TrainingRun,
    TrainRow,
    Validation,
    restore,
    train,
    train_runs,
)
from tuning.methods import count_parameters, trainable_model
from tuning.micro_batch import MicroBatchCache, micro_batch_tokens
from tuning.options import EVALUATION_ONLY, TuneConfig
from tuning.rows import shared_prefix, training_rows
from tuning.search import TrialOutcome
from tuning.sharding import full_state_dict, is_sharded, shard_for_training
from tuning.training_rate import training_rate
from tuning.trial_batch import AdapterTeam, trial_adapters
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
            # a model sharded for training answers as every launch answers: a whole copy on each rank
            return self.artifacts.load(folder) if is_sharded(model) else model

    def trial(self, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome:
        """One search trial: the configuration at `params` trained (or read back when stored), each judgement
        told to `observe`."""
        folder = self.artifacts.folder(self.task.concrete(params))
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):
            return self._trial_in(params, folder, observe)

    def _trial_in(self, params: dict[str, Any], folder: Path, observe: EvaluationObserver) -> TrialOutcome:
        """`trial` with its folder's lock held."""
        if is_complete(folder):  # trained before a kill, or by an earlier search with the same trial
            report = read_card(folder).training
            metrics: list[float | None] = [*report.validation_metrics] or [None] * len(report.validation_losses)
            judged = zip(report.validation_losses, metrics, report.evaluation_epochs, strict=True)
            for index, (loss, metric, epoch) in enumerate(judged, 1):
                observe(Evaluation(index, epoch, Judgement(loss, metric)))
        else:
            _, report = self.train(self.task.concrete(params), folder, observe)
        return trial_outcome(report, folder.name)

    def train(self, config: TuneConfig, folder: Path, observe: EvaluationObserver | None) -> tuple[Any, TrainingReport]:
        """Train this fixed configuration and save it with its card into `folder` (sharded over the launch's ranks
        when it asks for FSDP)."""
        model = self.fresh_model(config)
        prefix, rows = self._train_rows(config)
        settings = self.loop_settings(config, self.micro_batch_tokens(config, model, rows, prefix))
        counts = count_parameters(model)
        if self.task.spec.shards:
            model = shard_for_training(model)
        unfinished = folder.with_name(folder.name + ".partial")
        ctx = self.task.context
        progress = ctx.training_progress
        try:
            report = train(
                model,
                rows,
                self._validation(),
                settings,
                unfinished,
                ctx.engine.pad_id,
                prefix=prefix,
                progress=(lambda *p: progress.training(self.task.method, *p)) if progress else None,
                on_evaluation=self._heard(observe),
            )
        except Pruned:
            remove(unfinished)
            raise
        self._save(config, folder, model, report, counts)
        remove(unfinished)
        return model, report

    def trials_together(
        self, asked: Sequence[tuple[dict[str, Any], EvaluationObserver]]
    ) -> list[TrialOutcome | Pruned]:
        """Several search trials trained in one pass over the frozen base, one adapter each (tuning/trial_batch.py);
        each trial's evaluations are told to its observer in the order given, and it ends as it would alone (its
        outcome, or the Pruned that stopped it). Trials already stored are read back; a method that cannot add
        adapters, or trials whose loop settings differ beyond the learning rate, train one after another."""
        configs = [self.task.concrete(params) for params, _ in asked]
        folders = [self.artifacts.folder(config) for config in configs]
        with ExitStack() as locks:
            for folder in folders:
                folder.parent.mkdir(parents=True, exist_ok=True)
                locks.enter_context(group_lock(folder))
            fresh = [i for i, folder in enumerate(folders) if not is_complete(folder)]
            together = self._shareable([configs[i] for i in fresh])
            outcomes: dict[int, TrialOutcome | Pruned] = {}
            for index, ((params, observe), folder) in enumerate(zip(asked, folders, strict=True)):
                if index not in fresh or not together:
                    outcomes[index] = _pruned_or(partial(self._trial_in, params, folder, observe))
            if together:
                chosen = [configs[i] for i in fresh], [folders[i] for i in fresh], [asked[i][1] for i in fresh]
                reports = self._train_together(*chosen)
                for index, report in zip(fresh, reports, strict=True):
                    outcomes[index] = (
                        report if isinstance(report, Pruned) else trial_outcome(report, folders[index].name)
                    )
        return [outcomes[index] for index in range(len(asked))]

    def trials_at_once(self, wanted: int | Literal["auto"], limit: int) -> int:
        """How many of a search's `limit` trials train together: the number asked for; "auto" on CUDA, as many as
        fit the micro-batch the card was measured to take best (one trial's step fills a share of it), and one
        elsewhere (on CPU a pass over more rows costs in proportion: nothing to share). One for a method that
        cannot add adapters, and under a launch."""
        if self.task.spec.add_adapter is None or current_ranks().distributed or limit < 2:
            return 1
        if wanted != "auto":
            return min(wanted, limit)
        config = self.task.config
        if self.task.context.device != "cuda":
            return 1
        prefix, rows = self._train_rows(config)
        fits = self.micro_batch_tokens(config, self.fresh_model(), rows, prefix) // config.batch_tokens
        return max(1, min(limit, fits))

    def _shareable(self, configs: Sequence[TuneConfig]) -> bool:
        """Whether these trials can train together: two or more, a method that adds adapters, one process, and
        loop settings equal but for the learning rate."""
        if len(configs) < 2 or self.task.spec.add_adapter is None or current_ranks().distributed:
            return False
        shapes = {replace(self.loop_settings(config, 0), learning_rate=0.0) for config in configs}
        return len(shapes) == 1

    def _train_together(
        self, configs: Sequence[TuneConfig], folders: Sequence[Path], observers: Sequence[EvaluationObserver]
    ) -> list[TrainingReport | Pruned]:
        task, ctx = self.task, self.task.context
        add = task.spec.add_adapter
        assert add is not None  # _shareable checked it
        model = self.fresh_model(configs[0])
        options = iter([task.with_defaults(config) for config in configs[1:]])
        names = trial_adapters(model, lambda team, name: add(team, next(options), name), len(configs), ctx.seed)
        prefix, rows = self._train_rows(configs[0])
        budget = self.micro_batch_tokens(configs[0], model, rows, prefix)
        team = AdapterTeam(model, names, ctx.engine.pad_id, prefix, self.loop_settings(configs[0], budget))
        runs = []
        for name, config, folder, observe in zip(names, configs, folders, observers, strict=True):
            unfinished = folder.with_name(folder.name + ".partial")
            settings = self.loop_settings(config, budget)
            run = TrainingRun(team.trainable(name), settings, self._validation(), unfinished, self._heard(observe))
            team.join(run, name)
            runs.append(run)
        progress = ctx.training_progress
        torch.manual_seed(ctx.seed)
        try:
            train_runs(
                model,
                runs,
                rows,
                ctx.engine.pad_id,
                team.backward,
                prefix=prefix,
                focus=team.focus,
                progress=(lambda *p: progress.training(task.method, *p)) if progress else None,
            )
        finally:
            team.close()
        results: list[TrainingReport | Pruned] = []
        for run, config, folder in zip(runs, configs, folders, strict=True):
            unfinished = folder.with_name(folder.name + ".partial")
            if run.pruned is not None:
                results.append(run.pruned)
            else:
                alone = self.fresh_model(config)  # the trial's adapter saved exactly as if it had trained alone
                restore(alone_trainable(alone), dict(run.trainable))
                self._save(config, folder, alone, run.report)
                results.append(run.report)
            remove(unfinished)
        return results

    def loop_settings(self, config: TuneConfig, micro_batch_tokens: int) -> LoopSettings:
        """The training loop's settings for this configuration."""
        options = self.task.with_defaults(config)
        assert options.learning_rate is not None  # with_defaults filled it
        return LoopSettings(
            epochs=config.epochs,
            learning_rate=options.learning_rate,
            batch_tokens=config.batch_tokens,
            max_batch_size=config.max_batch_size,
            micro_batch_tokens=micro_batch_tokens,
            evaluations_per_epoch=config.evaluations_per_epoch,
            patience=config.patience,
            extra_epochs=config.extension(),
            checkpoint_every=config.checkpoint_every,
            seed=self.task.context.seed,
        )

    def _train_rows(self, config: TuneConfig) -> tuple[Sequence[int], list[TrainRow]]:
        """The shared prefix and the train rows; a task none of whose rows fit is bad input."""
        prefix, rows, _ = self.encoded_rows()
        if not rows:
            raise InputError(f"rungs.{self.task.method}: no train example fits max_length {config.max_length}")
        return prefix, rows

    def _validation(self) -> Validation:
        _, _, validation_rows = self.encoded_rows()
        return Validation(validation_rows, self.validation_judge(), self.task.metric)

    def _heard(self, observe: EvaluationObserver | None) -> EvaluationObserver:
        """The progress display hears each evaluation, then the caller's observer."""
        task, progress = self.task, self.task.context.training_progress

        def heard(evaluation: Evaluation) -> None:
            if progress:
                judged = evaluation.judgement
                progress.evaluated(task.method, evaluation.epoch, judged.loss, judged.metric, task.metric)
            if observe:
                observe(evaluation)

        return heard

    def _save(
        self,
        config: TuneConfig,
        folder: Path,
        model: Any,
        report: TrainingReport,
        counts: tuple[int, int] | None = None,
    ) -> None:
        """The trained configuration and its card, into `folder` (`counts`: the parameters counted before sharding)."""
        task, ctx = self.task, self.task.context
        options = task.with_defaults(config)
        _, rows, validation_rows = self.encoded_rows()
        trainable, total = counts or count_parameters(model)
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
        if is_sharded(model):
            save_artifact(folder, model, card, full_state_dict(model))  # every rank sends its shards to rank 0
            barrier()  # the artifact is in place before any rank reads it
        else:
            save_artifact(folder, model, card)
        self.trained_now = True


def alone_trainable(model: Any) -> list[tuple[str, torch.Tensor]]:
    """A model's trainable weights by name."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def trial_outcome(report: TrainingReport, artifact: str) -> TrialOutcome:
    """What a search hears of a trained trial: its judgements and cost, and the artifact it saved (its folder)."""
    return TrialOutcome(
        validation_metrics=list(report.validation_metrics),
        validation_losses=list(report.validation_losses),
        evaluation_epochs=list(report.evaluation_epochs),
        best_evaluation=report.best_evaluation,
        epochs_run=report.epochs_run,
        steps=report.steps,
        seconds=report.seconds,
        artifact=artifact,
    )


def _pruned_or(run: Callable[[], TrialOutcome]) -> TrialOutcome | Pruned:
    try:
        return run()
    except Pruned as stop:
        return stop
