"""The training loop: batches grouped by length, a validation judgement after every epoch, resumable.

Each epoch ends with the validation loss and, when the caller gives one, a validation metric (the
task's primary metric, answered the way the rung will answer the test). The best epoch by that
metric (loss breaks ties) is kept, training stops early when it stops improving, and an observer
hears each epoch's judgement (a search prunes hopeless trials through it). A checkpoint (trainable
weights, optimizer state, progress) is written atomically every few steps, so a run killed at any
moment resumes from the last one and ends with the same weights.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.cards import TrainingReport
from harness.distributed import shard, sum_gradients
from harness.inference.batching import token_budget_batches
from tuning.batch_loss import TrainRow, batch_loss
from tuning.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "EpochObserver",
    "LoopSettings",
    "Pruned",
    "TrainRow",
    "Validation",
    "evaluate_loss",
    "learning_rate_factor",
    "metric_in_eval_mode",
    "restore",
    "snapshot",
    "train",
]


@dataclass(frozen=True)
class LoopSettings:
    """How long and how fast to train."""

    epochs: int = 3
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    batch_tokens: int = 2048
    max_batch_size: int = 16
    # Activations cost about 1.8 MB per token for a 135M model: a step over more tokens than this runs
    # as micro-batches whose gradients add up to the whole batch's, so memory stays bounded.
    micro_batch_tokens: int = 512
    patience: int = 2
    checkpoint_every: int = 10
    seed: int = 0


@dataclass(frozen=True)
class Validation:
    """How an epoch is judged: loss on these rows, and (optionally) a metric of the model, higher is better."""

    rows: Sequence[TrainRow] = ()
    metric: Callable[[Any], float] | None = None
    metric_name: str = "loss"


EpochObserver = Callable[[int, float], None]
"""Hears (epoch, selection score) after each epoch, replayed on resume; raising stops training there."""


class Pruned(Exception):
    """Raised by an epoch observer to stop a run that a search has given up on; its partial state is discarded.

    The loop attaches its report on the way out, so what the stopped run cost is still counted.
    """

    report: TrainingReport | None = None


Progress = Callable[[int, int, float, float], None]  # step, total steps, loss, useful tokens/s


def train(
    model: Any,
    train_rows: Sequence[TrainRow],
    validation: Validation,
    settings: LoopSettings,
    checkpoint_dir: Path,
    pad_id: int,
    *,
    prefix: Sequence[int] = (),
    progress: Progress | None = None,
    on_epoch: EpochObserver | None = None,
) -> TrainingReport:
    """Train the model's trainable parameters in place and leave the best epoch's weights in it."""
    torch.manual_seed(settings.seed)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [p for _, p in trainable], lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    epochs_batches = [_epoch_batches(train_rows, settings, epoch) for epoch in range(settings.epochs)]
    total_steps = sum(len(b) for b in epochs_batches)
    warmup = max(1, int(total_steps * settings.warmup_ratio))
    report = TrainingReport(selection_metric=validation.metric_name)
    best: dict[str, torch.Tensor] | None = None
    stale = 0
    state = load_checkpoint(checkpoint_dir, trainable, optimizer)
    if state is not None:
        report = TrainingReport(**state["report"])
        report.resumed_from_step = report.steps
        stale = state["stale"]
        best = state.get("best")
        if on_epoch:  # the observer hears the epochs judged before the kill again
            for epoch in range(report.epochs_run):
                on_epoch(epoch + 1, _selection(report, epoch)[0])
    started = time.perf_counter() - report.seconds
    model.train()
    step = 0
    for epoch, batches in enumerate(epochs_batches):
        if epoch < report.epochs_run:
            step += len(batches)
            continue
        if stale >= settings.patience:
            break
        for batch in batches:
            step += 1
            if step <= report.steps:  # done before the resume point
                continue
            rows = [train_rows[i] for i in batch]
            total = sum(row.completion for row in rows)
            # under a launch each rank backpropagates its share of the batch and the shares' gradients add up
            mine = accumulated_backward(shard(rows), model, pad_id, prefix, settings, batch_completion=total)
            summed = sum_gradients([p for _, p in trainable], (mine.loss, mine.useful_tokens, mine.computed_tokens))
            result = StepResult(summed[0], int(summed[1]), int(summed[2]), total)
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], settings.max_grad_norm)
            for group in optimizer.param_groups:  # set from the step number, so a resumed run has the same rate
                group["lr"] = settings.learning_rate * learning_rate_factor(step - 1, warmup, total_steps)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            report.steps = step
            report.train_losses.append(result.loss)
            report.learning_rates.append(optimizer.param_groups[0]["lr"])
            report.useful_tokens += result.useful_tokens
            report.computed_tokens += result.computed_tokens
            report.completion_tokens += result.completion_tokens
            report.seconds = time.perf_counter() - started
            report.tokens_per_s.append(report.useful_tokens / max(report.seconds, 1e-9))
            if progress:
                progress(step, total_steps, report.train_losses[-1], report.tokens_per_s[-1])
            if step % settings.checkpoint_every == 0:
                save_checkpoint(checkpoint_dir, trainable, optimizer, _state(report, stale, best))
        report.epochs_run = epoch + 1
        _judge_epoch(model, validation, settings, pad_id, prefix, report)
        if _selection(report, epoch) > _selection(report, report.best_epoch - 1):
            stale, report.best_epoch = 0, epoch + 1
            best = snapshot(trainable)
        else:
            stale += 1
        report.seconds = time.perf_counter() - started
        save_checkpoint(checkpoint_dir, trainable, optimizer, _state(report, stale, best))
        if on_epoch:
            try:
                on_epoch(epoch + 1, _selection(report, epoch)[0])
            except Pruned as stop:
                stop.report = report
                raise
    if best is not None:
        restore(trainable, best)
    model.eval()
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _judge_epoch(
    model: Any,
    validation: Validation,
    settings: LoopSettings,
    pad_id: int,
    prefix: Sequence[int],
    report: TrainingReport,
) -> None:
    """Append this epoch's validation loss (the last train loss when there are no validation rows) and metric."""
    if validation.rows:
        loss = evaluate_loss(model, validation.rows, settings, pad_id, prefix)
    else:
        loss = report.train_losses[-1]
    report.validation_losses.append(loss)
    if validation.metric is not None:
        report.validation_metrics.append(metric_in_eval_mode(model, validation.metric))


def snapshot(trainable: Sequence[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A copy of the trainable weights (the best epoch's, kept while training goes on)."""
    return {name: p.detach().clone() for name, p in trainable}


def restore(trainable: Sequence[tuple[str, torch.Tensor]], weights: dict[str, torch.Tensor]) -> None:
    """Put a snapshot's weights back into the trainable parameters."""
    with torch.no_grad():
        for name, parameter in trainable:
            parameter.copy_(weights[name])


def metric_in_eval_mode(model: Any, metric: Callable[[Any], float]) -> float:
    """The metric of the model in eval mode (dropout off), leaving it in the mode it was in."""
    was_training = model.training
    model.eval()
    value = float(metric(model))
    if was_training:
        model.train()
    return value


def _selection(report: TrainingReport, epoch: int) -> tuple[float, float]:
    """An epoch's rank: its validation metric (higher is better), then its loss (lower is better)."""
    if epoch < 0:
        return (float("-inf"), float("-inf"))
    loss = -round(report.validation_losses[epoch], 4)  # a difference below 1e-4 is no improvement
    if report.validation_metrics:
        return (round(report.validation_metrics[epoch], 9), loss)
    return (loss, loss)


@dataclass(frozen=True)
class StepResult:
    """One optimizer step's mean loss and token counts (its micro-batches added up)."""

    loss: float
    useful_tokens: int
    computed_tokens: int
    completion_tokens: int


def accumulated_backward(
    rows: Sequence[TrainRow],
    model: Any,
    pad_id: int,
    prefix: Sequence[int],
    settings: LoopSettings,
    batch_completion: int | None = None,
) -> StepResult:
    """Backward of the batch's mean completion-token loss, in micro-batches of at most `micro_batch_tokens`.

    Each micro-batch's mean loss is weighted by its share of the batch's completion tokens, so the
    gradient is the whole batch's (up to floating-point summation order). When `rows` are one rank's
    share of a batch, `batch_completion` is the whole batch's count, so the ranks' gradients add up.
    """
    parts = _micro_batches(rows, settings.micro_batch_tokens)
    total = batch_completion or sum(row.completion for row in rows)
    loss = 0.0
    useful = computed = 0
    for part in parts:
        result = batch_loss(part, model, pad_id, prefix)
        weight = result.completion_tokens / total
        (result.loss * weight).backward()
        loss += float(result.loss.detach()) * weight
        useful += result.useful_tokens
        computed += result.computed_tokens
    return StepResult(loss, useful, computed, total)


def _micro_batches(rows: Sequence[TrainRow], budget: int) -> list[list[TrainRow]]:
    """Consecutive slices whose padded size (rows x longest row) stays within the budget (one row at least)."""
    parts: list[list[TrainRow]] = []
    current: list[TrainRow] = []
    for row in rows:
        longest = max([len(r.tokens) for r in current] + [len(row.tokens)])
        if current and longest * (len(current) + 1) > budget:
            parts.append(current)
            current = []
        current.append(row)
    return [*parts, current] if current else parts


@torch.no_grad()
def evaluate_loss(
    model: Any, rows: Sequence[TrainRow], settings: LoopSettings, pad_id: int, prefix: Sequence[int] = ()
) -> float:
    """Mean loss per completion token over the rows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in token_budget_batches([len(r.tokens) for r in rows], settings.batch_tokens, settings.max_batch_size):
        result = batch_loss([rows[i] for i in batch], model, pad_id, prefix)
        total += float(result.loss) * result.completion_tokens
        count += result.completion_tokens
    if was_training:
        model.train()
    return total / max(count, 1)


def learning_rate_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero."""
    return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))


def _epoch_batches(rows: Sequence[TrainRow], settings: LoopSettings, epoch: int) -> list[list[int]]:
    """Length-grouped batches in a seeded order that differs per epoch."""
    batches = token_budget_batches([len(r.tokens) for r in rows], settings.batch_tokens, settings.max_batch_size)
    random.Random(settings.seed * 1000 + epoch).shuffle(batches)
    return batches


def _state(report: TrainingReport, stale: int, best: dict[str, torch.Tensor] | None) -> dict[str, Any]:
    return {"report": report.__dict__.copy(), "stale": stale, "best": best}
