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
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from harness.cards import TrainingReport
from harness.distributed import every_share, shard, sum_gradients, sum_numbers
from harness.inference.batching import token_budget_batches
from tuning.batch_loss import TrainRow, batch_loss
from tuning.judging import Validation
from tuning.loop_settings import LoopSettings
from tuning.sharding import is_sharded
from tuning.training_run import (
    EnoughTraining,
    EvaluationObserver,
    Pruned,
    StepResult,
    TrainingRun,
    rate_at,
    restore,
    snapshot,
)

__all__ = [
    "EnoughTraining",
    "EvaluationObserver",
    "LoopSettings",
    "Pruned",
    "StepResult",
    "TrainRow",
    "TrainingRun",
    "Validation",
    "evaluation_steps",
    "learning_rate_factor",
    "micro_batches",
    "rate_at",
    "restore",
    "snapshot",
    "train",
    "train_runs",
]

Progress = Callable[[int, int, float, float], None]  # step, total steps, loss, useful tokens/s
StepBackward = Callable[[Sequence[TrainingRun], list[TrainRow]], list[StepResult]]
"""The backward of one step's rows for each run that takes the step (its gradients left in its weights)."""
Focus = Callable[[TrainingRun], AbstractContextManager[Any]]
"""While entered, the model answers as this run alone (for judging it)."""


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
    sharded = is_sharded(model)
    run = TrainingRun(trainable, settings, validation, checkpoint_dir, on_evaluation, sharded)

    def backward(runs: Sequence[TrainingRun], rows: list[TrainRow]) -> list[StepResult]:
        total = sum(row.completion for row in rows)
        # under a launch each rank backpropagates its share of the batch and the shares' gradients add up
        passes = lockstep_passes(rows, settings.micro_batch_tokens) if sharded else 0
        mine = accumulated_backward(
            shard(rows), model, pad_id, prefix, settings, batch_completion=total, min_passes=passes, filler=rows[0]
        )
        counts = (mine.loss, mine.useful_tokens, mine.computed_tokens, mine.padded_tokens)
        if sharded:  # FSDP has summed the gradients into each rank's shard during the backward passes
            summed = sum_numbers(counts, trainable[0][1].device)
        else:
            summed = sum_gradients([p for _, p in trainable], counts)
        return [StepResult(summed[0], int(summed[1]), int(summed[2]), total, int(summed[3]))]

    train_runs(model, [run], train_rows, pad_id, backward, prefix=prefix, progress=progress)
    if run.pruned is not None:
        raise run.pruned
    return run.report


def train_runs(
    model: Any,
    runs: Sequence[TrainingRun],
    train_rows: Sequence[TrainRow],
    pad_id: int,
    backward: StepBackward,
    *,
    prefix: Sequence[int] = (),
    focus: Focus = lambda run: nullcontext(),
    progress: Progress | None = None,
) -> None:
    """Move the runs through the same batches in step, each deciding for itself; each ends with its best weights.

    The runs share every setting but their learning rates (the batches, evaluations and patience).
    Each step's time is shared out among the runs that took it; an evaluation's time is its run's (alone, a
    run's seconds are the loop's wall clock).
    """
    settings = runs[0].settings
    lengths = [len(r.tokens) for r in train_rows]
    per_epoch = len(token_budget_batches(lengths, settings.batch_tokens, settings.max_batch_size))
    judged_at = evaluation_steps(per_epoch, settings.evaluations_per_epoch)
    warmup = max(1, round(settings.warmup_epochs * per_epoch))
    planned_steps = settings.epochs * per_epoch
    model.train()
    step = 0
    mark = time.perf_counter()  # every second from here on is counted to the runs that took it

    def since_mark() -> float:
        nonlocal mark
        now = time.perf_counter()
        elapsed, mark = now - mark, now
        return elapsed

    for epoch in range(settings.epochs + settings.extra_epochs):
        for run in runs:
            run.consider_epoch(epoch, step)
        if all(run.finished for run in runs):
            break
        for position, batch in enumerate(_epoch_batches(train_rows, settings, epoch), start=1):
            step += 1
            taking = [run for run in runs if run.trains_at(step)]  # a resumed run skips the steps done before
            if not taking:
                if all(run.finished for run in runs):
                    break
                continue
            for run in taking:
                run.set_rate(step, warmup)
            results = backward(taking, [train_rows[i] for i in batch])
            for run, result in zip(taking, results, strict=True):
                run.apply(result, step)
            share = since_mark() / len(taking)
            for run in taking:
                run.spent(share)
            if progress:
                first = taking[0].report
                progress(step, max(planned_steps, step), first.train_losses[-1], first.tokens_per_s[-1])
            if position in judged_at:
                for run in taking:
                    with focus(run):
                        run.evaluate(model, epoch + judged_at[position], pad_id, prefix, since_mark)
            elif step % settings.checkpoint_every == 0:
                for run in taking:
                    run.checkpoint()
    for run in runs:
        run.end()
    model.eval()


def evaluation_steps(steps_per_epoch: int, evaluations: int) -> dict[int, float]:
    """{step of the epoch (from 1): the share of the epoch it ends} for the steps after which the run is judged.

    `evaluations` evenly spaced, the epoch's last step always among them (an epoch of fewer steps
    than evaluations is judged after each step).
    """
    return {math.ceil(steps_per_epoch * k / evaluations): k / evaluations for k in range(1, evaluations + 1)}


def accumulated_backward(
    rows: Sequence[TrainRow],
    model: Any,
    pad_id: int,
    prefix: Sequence[int],
    settings: LoopSettings,
    batch_completion: int | None = None,
    *,
    min_passes: int = 0,
    filler: TrainRow | None = None,
) -> StepResult:
    """Backward of the batch's mean completion-token loss, in micro-batches of at most `micro_batch_tokens`.

    Each micro-batch's mean loss is weighted by its share of the batch's completion tokens, so the
    gradient is the whole batch's (up to floating-point summation order). When `rows` are one rank's
    share of a batch, `batch_completion` is the whole batch's count, so the ranks' gradients add up.
    A rank of a sharded model whose share has fewer micro-batches than another's makes up `min_passes`
    with passes over `filler` weighted zero: every rank must run each forward and backward of a sharded model.
    """
    parts = micro_batches(rows, settings.micro_batch_tokens)
    total = batch_completion or sum(row.completion for row in rows)
    loss = 0.0
    useful = computed = padded = 0
    # A prefix run once per batch is a second forward of every layer before the one backward, and FSDP frees a
    # layer's gathered weights after its first backward: on a sharded model each row carries the prefix itself.
    sharded = is_sharded(model)
    packed = uses_packing(model, settings) and not sharded
    for part in parts:
        result = batch_loss(part, model, pad_id, prefix, packed=packed, share_prefix=not sharded)
        weight = result.completion_tokens / total
        (result.loss * weight).backward()
        loss += float(result.loss.detach()) * weight
        useful += result.useful_tokens
        computed += result.computed_tokens
        padded += result.padded_tokens
    for _ in range(min_passes - len(parts)):
        assert filler is not None  # the caller gives one with idle passes
        (batch_loss([filler], model, pad_id, prefix, share_prefix=False).loss * 0.0).backward()
    return StepResult(loss, useful, computed, total, padded)


def lockstep_passes(rows: Sequence[TrainRow], budget: int) -> int:
    """The most micro-batches any rank's share of the batch takes: what every rank of a sharded model runs."""
    return max(len(micro_batches(share, budget)) for share in every_share(rows))


def uses_packing(model: Any, settings: LoopSettings) -> bool:
    """Whether steps run padding-free: `packing` "on", or "auto" on CUDA.

    "auto" leaves the CPU padded: benchmarks/packing.py measured packing 1.1-1.4x faster on a quiet
    2-core machine but 0.5-0.85x on a busy one, and the CPU path must not get slower."""
    if settings.packing == "auto":
        return bool(next(model.parameters()).device.type == "cuda")
    return settings.packing == "on"


def micro_batches(rows: Sequence[TrainRow], budget: int) -> list[list[TrainRow]]:
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
