"""The training loop: batches grouped by length, validation judged a few times per epoch, resumable.

The run is judged on the validation split `evaluations_per_epoch` times per epoch: the loss and,
when the caller's judge has one, the task's metric (answered the way the rung will answer the
test). The best evaluation by that metric (loss breaks ties) is kept, training stops when
`patience` epochs of evaluations bring no improvement, and an observer hears each evaluation (a
search prunes hopeless trials through it, before a whole epoch is spent).

The learning rate warms up linearly over the first `warmup_epochs`, then decays as the inverse square
root of the step (`rate_at`). Unlike a decay to zero at a planned last step, that schedule does not
depend on how long the run may go: a run still improving at its last planned epoch continues (up to
`extra_epochs` more, while each epoch ends on its best evaluation) exactly as a longer run would
have, and a trial that a search stops early followed the same curve as one it keeps. On the shipped
example it reached the accuracy of a linear decay over four epochs with smoother validation curves
than a constant rate (batches of 8 rows: more, smaller steps, as LoRA prefers on small data).

A checkpoint (trainable weights, optimizer state, progress) is written atomically every few steps
and after every evaluation, so a run killed at any moment resumes from the last one and ends with
the same weights.
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from harness.cards import TrainingReport
from harness.distributed import shard, sum_gradients
from harness.inference.batching import token_budget_batches
from tuning.batch_loss import TrainRow, batch_loss
from tuning.checkpoint import load_checkpoint, save_checkpoint
from tuning.judging import Evaluation, Judgement, Validation, evaluate_loss, judge_in_eval_mode, rank

__all__ = [
    "EnoughTraining",
    "EvaluationObserver",
    "LoopSettings",
    "Pruned",
    "TrainRow",
    "Validation",
    "evaluation_steps",
    "learning_rate_factor",
    "rate_at",
    "restore",
    "snapshot",
    "train",
]


@dataclass(frozen=True)
class LoopSettings:
    """How long and how fast to train, and how often to judge."""

    epochs: int = 3
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_epochs: float = 0.5
    max_grad_norm: float = 1.0
    batch_tokens: int = 2048
    max_batch_size: int = 8
    # Activations cost about 1.8 MB per token for a 135M model: a step over more tokens than this runs
    # as micro-batches whose gradients add up to the whole batch's, so memory stays bounded.
    micro_batch_tokens: int = 512
    # Padding-free micro-batches (tuning/packing.py): "auto" packs on CUDA only (see `uses_packing`).
    packing: Literal["auto", "on", "off"] = "auto"
    evaluations_per_epoch: int = 1
    patience: float = 2.0  # epochs of evaluations without improvement before stopping
    extra_epochs: int = 0  # epochs a run may add past `epochs` while every epoch ends on its best evaluation
    checkpoint_every: int = 10
    seed: int = 0


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
    on_evaluation: EvaluationObserver | None = None,
) -> TrainingReport:
    """Train the model's trainable parameters in place and leave the best evaluation's weights in it."""
    torch.manual_seed(settings.seed)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [p for _, p in trainable], lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    lengths = [len(r.tokens) for r in train_rows]
    per_epoch = len(token_budget_batches(lengths, settings.batch_tokens, settings.max_batch_size))
    judged_at = evaluation_steps(per_epoch, settings.evaluations_per_epoch)
    warmup = max(1, round(settings.warmup_epochs * per_epoch))
    planned_steps = settings.epochs * per_epoch
    report = TrainingReport(selection_metric=validation.metric_name)
    best: dict[str, torch.Tensor] | None = None
    stale = 0
    state = load_checkpoint(checkpoint_dir, trainable, optimizer)
    if state is not None:
        report = TrainingReport(**state["report"])
        report.resumed_from_step = report.steps
        stale = state["stale"]
        best = state.get("best")
        if on_evaluation:  # the observer hears the evaluations judged before the kill again
            try:
                for index, (loss, metric) in enumerate(_judgements(report)):
                    on_evaluation(Evaluation(index + 1, report.evaluation_epochs[index], Judgement(loss, metric)))
            except EnoughTraining:
                stale = _patience(settings)
    started = time.perf_counter() - report.seconds
    model.train()
    step = 0
    for epoch in range(settings.epochs + settings.extra_epochs):
        if stale >= _patience(settings):
            break
        if step >= report.steps and not _starts(report, settings, epoch):  # an epoch begun before a kill goes on
            break
        for position, batch in enumerate(_epoch_batches(train_rows, settings, epoch), start=1):
            step += 1
            if step <= report.steps:  # done before the resume point
                continue
            for group in optimizer.param_groups:  # set from the step number, so a resumed run has the same rate
                group["lr"] = settings.learning_rate * rate_at(step, warmup)
            _step(model, trainable, optimizer, [train_rows[i] for i in batch], pad_id, prefix, settings, report)
            report.steps = step
            report.seconds = time.perf_counter() - started
            report.tokens_per_s.append(report.useful_tokens / max(report.seconds, 1e-9))
            if progress:
                progress(step, max(planned_steps, step), report.train_losses[-1], report.tokens_per_s[-1])
            if position in judged_at:
                report.epochs_run = epoch + judged_at[position]
                judgement = _judge(model, validation, settings, pad_id, prefix, report)
                if rank(judgement.loss, judgement.metric) > _best_rank(report):
                    stale, report.best_evaluation, best = 0, len(report.validation_losses), snapshot(trainable)
                else:
                    stale += 1
                report.seconds = time.perf_counter() - started
                save_checkpoint(checkpoint_dir, trainable, optimizer, _state(report, stale, best))
                if on_evaluation:
                    try:
                        number = len(report.validation_losses)
                        on_evaluation(Evaluation(number, report.evaluation_epochs[-1], judgement))
                    except Pruned as stop:
                        stop.report = report
                        raise
                    except EnoughTraining:
                        stale = _patience(settings)
                if stale >= _patience(settings):
                    break
            elif step % settings.checkpoint_every == 0:
                save_checkpoint(checkpoint_dir, trainable, optimizer, _state(report, stale, best))
    if best is not None:
        restore(trainable, best)
    model.eval()
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def rate_at(step: int, warmup: int) -> float:
    """The learning rate's factor at a step (from 1): linear warm-up, then the inverse square root of the step."""
    return min(step, warmup) / warmup * math.sqrt(warmup / max(step, warmup))


def evaluation_steps(steps_per_epoch: int, evaluations: int) -> dict[int, float]:
    """{step of the epoch (from 1): the share of the epoch it ends} for the steps after which the run is judged.

    `evaluations` evenly spaced, the epoch's last step always among them (an epoch of fewer steps
    than evaluations is judged after each step).
    """
    return {math.ceil(steps_per_epoch * k / evaluations): k / evaluations for k in range(1, evaluations + 1)}


def _starts(report: TrainingReport, settings: LoopSettings, epoch: int) -> bool:
    """Whether epoch `epoch` (from 0) begins: always within the planned epochs; past them only while the
    run's latest evaluation is its best (it was still improving)."""
    if epoch < settings.epochs:
        return True
    return report.best_evaluation == len(report.validation_losses) > 0


def _patience(settings: LoopSettings) -> int:
    return max(1, round(settings.patience * settings.evaluations_per_epoch))


def _step(
    model: Any,
    trainable: Sequence[tuple[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    rows: list[TrainRow],
    pad_id: int,
    prefix: Sequence[int],
    settings: LoopSettings,
    report: TrainingReport,
) -> None:
    """One optimizer step on `rows`; its loss and token counts go into the report."""
    total = sum(row.completion for row in rows)
    # under a launch each rank backpropagates its share of the batch and the shares' gradients add up
    mine = accumulated_backward(shard(rows), model, pad_id, prefix, settings, batch_completion=total)
    counts = (mine.loss, mine.useful_tokens, mine.computed_tokens, mine.padded_tokens)
    summed = sum_gradients([p for _, p in trainable], counts)
    torch.nn.utils.clip_grad_norm_([p for _, p in trainable], settings.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    report.train_losses.append(summed[0])
    report.learning_rates.append(optimizer.param_groups[0]["lr"])
    report.useful_tokens += int(summed[1])
    report.computed_tokens += int(summed[2])
    report.padded_tokens += int(summed[3])
    report.completion_tokens += total


def _judge(
    model: Any,
    validation: Validation,
    settings: LoopSettings,
    pad_id: int,
    prefix: Sequence[int],
    report: TrainingReport,
) -> Judgement:
    """Judge the model now and append the judgement to the report (the last train loss stands in without rows)."""
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


def _judgements(report: TrainingReport) -> list[tuple[float, float | None]]:
    metrics: list[float | None] = list(report.validation_metrics) or [None] * len(report.validation_losses)
    return list(zip(report.validation_losses, metrics, strict=True))


def _best_rank(report: TrainingReport) -> tuple[float, float]:
    if not report.best_evaluation:
        return (float("-inf"), float("-inf"))
    loss, metric = _judgements(report)[report.best_evaluation - 1]
    return rank(loss, metric)


def snapshot(trainable: Sequence[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A copy of the trainable weights (the best evaluation's, kept while training goes on)."""
    return {name: p.detach().clone() for name, p in trainable}


def restore(trainable: Sequence[tuple[str, torch.Tensor]], weights: dict[str, torch.Tensor]) -> None:
    """Put a snapshot's weights back into the trainable parameters."""
    with torch.no_grad():
        for name, parameter in trainable:
            parameter.copy_(weights[name])


@dataclass(frozen=True)
class StepResult:
    """One optimizer step's mean loss and token counts (its micro-batches added up)."""

    loss: float
    useful_tokens: int
    computed_tokens: int
    completion_tokens: int
    padded_tokens: int = 0


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
    useful = computed = padded = 0
    packed = uses_packing(model, settings)
    for part in parts:
        result = batch_loss(part, model, pad_id, prefix, packed=packed)
        weight = result.completion_tokens / total
        (result.loss * weight).backward()
        loss += float(result.loss.detach()) * weight
        useful += result.useful_tokens
        computed += result.computed_tokens
        padded += result.padded_tokens
    return StepResult(loss, useful, computed, total, padded)


def uses_packing(model: Any, settings: LoopSettings) -> bool:
    """Whether steps run padding-free: `packing` "on", or "auto" on CUDA.

    "auto" leaves the CPU padded: benchmarks/packing.py measured packing 1.1-1.4x faster on a quiet
    2-core machine but 0.5-0.85x on a busy one, and the CPU path must not get slower."""
    if settings.packing == "auto":
        return bool(next(model.parameters()).device.type == "cuda")
    return settings.packing == "on"


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


def learning_rate_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero (the preference and distillation loops' schedule)."""
    return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))


def _epoch_batches(rows: Sequence[TrainRow], settings: LoopSettings, epoch: int) -> list[list[int]]:
    """Length-grouped batches in a seeded order that differs per epoch."""
    batches = token_budget_batches([len(r.tokens) for r in rows], settings.batch_tokens, settings.max_batch_size)
    random.Random(settings.seed * 1000 + epoch).shuffle(batches)
    return batches


def _state(report: TrainingReport, stale: int, best: dict[str, torch.Tensor] | None) -> dict[str, Any]:
    return {"report": report.__dict__.copy(), "stale": stale, "best": best}
