"""One configuration's way through the training loop: its weights, optimizer, judgements, best weights, patience.

The loop (tuning/loop.py) moves one run, or several in step over one model (a search's trials, each
with its own adapter: tuning/trial_batch.py). Every decision a run makes (its learning rate at a step,
keeping its best judgement, early stopping, being pruned, extending past its planned epochs) reads
its own state only, so a run moved beside others decides exactly as it would alone.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.cards import TrainingReport
from tuning.checkpoint import load_checkpoint, save_checkpoint
from tuning.judging import Evaluation, Judgement, Validation, evaluate_loss, judge_in_eval_mode, rank
from tuning.loop_settings import LoopSettings

Named = list[tuple[str, torch.Tensor]]

EvaluationObserver = Callable[[Evaluation], None]
"""Hears each evaluation as it is made, replayed on resume; raising stops training."""


class Pruned(Exception):
    """Raised by an evaluation observer to stop a run that a search has given up on; its partial state is discarded.

    The loop attaches its report on the way out, so what the stopped run cost is still counted.
    """

    report: TrainingReport | None = None


class EnoughTraining(Exception):
    """Raised by an evaluation observer to end a run at this judgement as early stopping would: the best
    judgement's weights are kept and the run is complete (a search whose budget is spent)."""


@dataclass(frozen=True)
class StepResult:
    """One optimizer step's mean loss and token counts (its micro-batches added up)."""

    loss: float
    useful_tokens: int
    computed_tokens: int
    completion_tokens: int
    padded_tokens: int = 0


class TrainingRun:
    """One configuration trained by the loop; restored from its newest checkpoint when there is one."""

    def __init__(
        self,
        trainable: Named,
        settings: LoopSettings,
        validation: Validation,
        checkpoint_dir: Path,
        on_evaluation: EvaluationObserver | None = None,
        sharded: bool = False,
    ):
        self.trainable = trainable
        self.sharded = sharded  # its weights are FSDP shards: each rank checkpoints its own
        self.settings = settings
        self.validation = validation
        self.checkpoint_dir = checkpoint_dir
        self.on_evaluation = on_evaluation
        self.optimizer = torch.optim.AdamW(
            [p for _, p in trainable], lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        self.report = TrainingReport(selection_metric=validation.metric_name)
        self.best: dict[str, torch.Tensor] | None = None
        self.stale = 0
        self.finished = False
        self.pruned: Pruned | None = None
        state = load_checkpoint(checkpoint_dir, trainable, self.optimizer, sharded)
        if state is not None:
            self.report = TrainingReport(**state["report"])
            self.report.resumed_from_step = self.report.steps
            self.stale = state["stale"]
            self.best = state.get("best")
            self._replay()

    def _replay(self) -> None:
        """The observer hears the evaluations judged before the kill again."""
        if not self.on_evaluation:
            return
        report = self.report
        try:
            for index, (loss, metric) in enumerate(judgements(report)):
                self.on_evaluation(Evaluation(index + 1, report.evaluation_epochs[index], Judgement(loss, metric)))
        except EnoughTraining:
            self.stale = self.patience()

    def patience(self) -> int:
        """Evaluations without improvement before the run stops."""
        return max(1, round(self.settings.patience * self.settings.evaluations_per_epoch))

    def consider_epoch(self, epoch: int, step: int) -> None:
        """Before epoch `epoch` (from 0), at loop step `step`: finish unless patience is left and the epoch
        begins for this run (always within the planned epochs; past them only while its latest evaluation is
        its best). An epoch begun before a kill goes on."""
        if self.finished:
            return
        if self.stale >= self.patience() or (step >= self.report.steps and not self._starts(epoch)):
            self.finished = True

    def _starts(self, epoch: int) -> bool:
        if epoch < self.settings.epochs:
            return True
        report = self.report
        return report.best_evaluation == len(report.validation_losses) > 0

    def trains_at(self, step: int) -> bool:
        """Whether this run takes loop step `step` (from 1): it has not finished and did not take it before a kill."""
        return not self.finished and step > self.report.steps

    def set_rate(self, step: int, warmup: int) -> None:
        """The learning rate at this step, from the step number (so a resumed run has the same rate)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.settings.learning_rate * rate_at(step, warmup)

    def apply(self, result: StepResult, step: int) -> None:
        """The optimizer step after the step's backward; its loss and token counts go into the report."""
        parameters = [p for _, p in self.trainable]
        torch.nn.utils.clip_grad_norm_(parameters, self.settings.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        report = self.report
        report.train_losses.append(result.loss)
        report.learning_rates.append(self.optimizer.param_groups[0]["lr"])
        report.useful_tokens += result.useful_tokens
        report.computed_tokens += result.computed_tokens
        report.padded_tokens += result.padded_tokens
        report.completion_tokens += result.completion_tokens
        report.steps = step

    def spent(self, seconds: float) -> None:
        """Count this run's share of the loop's time, and its throughput so far."""
        report = self.report
        report.seconds += seconds
        report.tokens_per_s.append(report.useful_tokens / max(report.seconds, 1e-9))

    def evaluate(
        self, model: Any, epochs_run: float, pad_id: int, prefix: Sequence[int], elapsed: Callable[[], float]
    ) -> None:
        """Judge the model (answering as this run), keep the best weights, checkpoint, tell the observer; the run
        finishes when patience runs out, the observer ends it, or prunes it. `elapsed` tells the seconds the
        judgement took."""
        report = self.report
        report.epochs_run = epochs_run
        judgement = self._judge(model, pad_id, prefix)
        if rank(judgement.loss, judgement.metric) > self._best_rank():
            self.stale, report.best_evaluation, self.best = 0, len(report.validation_losses), snapshot(self.trainable)
        else:
            self.stale += 1
        report.seconds += elapsed()
        self.checkpoint()
        if self.on_evaluation:
            try:
                number = len(self.report.validation_losses)
                self.on_evaluation(Evaluation(number, self.report.evaluation_epochs[-1], judgement))
            except Pruned as stop:
                stop.report = self.report
                self.pruned, self.finished = stop, True
                return
            except EnoughTraining:
                self.stale = self.patience()
        if self.stale >= self.patience():
            self.finished = True

    def checkpoint(self) -> None:
        """Write the run's weights, optimizer state and progress (a killed run resumes from here)."""
        state = {"report": self.report.__dict__.copy(), "stale": self.stale, "best": self.best}
        save_checkpoint(self.checkpoint_dir, self.trainable, self.optimizer, state, self.sharded)

    def end(self) -> TrainingReport:
        """Put the best evaluation's weights back (a pruned run's are discarded) and close the report."""
        if self.best is not None and self.pruned is None:
            restore(self.trainable, self.best)
        self.report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self.report

    def _judge(self, model: Any, pad_id: int, prefix: Sequence[int]) -> Judgement:
        """Judge the model now and append the judgement to the report (the last train loss stands in without rows)."""
        validation, settings, report = self.validation, self.settings, self.report
        if validation.judge is not None:
            judgement = judge_in_eval_mode(model, validation.judge)
        elif validation.rows:
            loss = evaluate_loss(
                model,
                validation.rows,
                pad_id,
                prefix,
                batch_tokens=settings.batch_tokens,
                max_batch_size=settings.max_batch_size,
            )
            judgement = Judgement(loss)
        else:
            judgement = Judgement(report.train_losses[-1])
        report.validation_losses.append(judgement.loss)
        if judgement.metric is not None:
            report.validation_metrics.append(judgement.metric)
        report.evaluation_epochs.append(round(report.epochs_run, 4))
        return judgement

    def _best_rank(self) -> tuple[float, float]:
        report = self.report
        if not report.best_evaluation:
            return (float("-inf"), float("-inf"))
        loss, metric = judgements(report)[report.best_evaluation - 1]
        return rank(loss, metric)


def rate_at(step: int, warmup: int) -> float:
    """The learning rate's factor at a step (from 1): linear warm-up, then the inverse square root of the step."""
    return min(step, warmup) / warmup * math.sqrt(warmup / max(step, warmup))


def judgements(report: TrainingReport) -> list[tuple[float, float | None]]:
    """(loss, metric) per evaluation of the report."""
    metrics: list[float | None] = list(report.validation_metrics) or [None] * len(report.validation_losses)
    return list(zip(report.validation_losses, metrics, strict=True))


def snapshot(trainable: Sequence[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A copy of the trainable weights (the best evaluation's, kept while training goes on)."""
    return {name: p.detach().clone() for name, p in trainable}


def restore(trainable: Sequence[tuple[str, torch.Tensor]], weights: dict[str, torch.Tensor]) -> None:
    """Put a snapshot's weights back into the trainable parameters."""
    with torch.no_grad():
        for name, parameter in trainable:
            parameter.copy_(weights[name])
