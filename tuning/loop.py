"""The training loop: loss on completion tokens only, logits only where the loss is, no padding waste.

Rows are left-padded so every row's completion ends at the last position: one 1D `logits_to_keep`
(the last A positions, A the longest completion in the batch) then covers exactly the positions
the loss needs, on every transformers 5 release. Batches are grouped by length. Each epoch ends
with a validation loss; the best state is kept and training stops early when it stops improving.
A checkpoint (trainable weights, optimizer state, progress) is written atomically every few steps,
so a run killed at any moment resumes from the last one.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.batching import token_budget_batches
from tuning.checkpoint import load_checkpoint, save_checkpoint
from tuning.virtual_tokens import training_logits


@dataclass(frozen=True)
class TrainRow:
    """One training row: prompt tokens followed by the completion the loss is computed on."""

    tokens: tuple[int, ...]
    completion: int  # how many of the last tokens are the completion


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
    patience: int = 1
    checkpoint_every: int = 10
    seed: int = 0


@dataclass
class TrainingReport:
    """What training did: losses per step and per epoch, time, tokens and memory."""

    train_losses: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    steps: int = 0
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    completion_tokens: int = 0
    useful_tokens: int = 0
    peak_rss_mb: float = 0.0
    resumed_from_step: int = 0


Progress = Callable[[int, int, float, float], None]  # step, total steps, loss, useful tokens/s


def train(
    model: Any,
    train_rows: Sequence[TrainRow],
    validation_rows: Sequence[TrainRow],
    settings: LoopSettings,
    checkpoint_dir: Path,
    pad_id: int,
    progress: Progress | None = None,
) -> TrainingReport:
    """Train the model's trainable parameters in place and leave the best epoch's weights in it."""
    torch.manual_seed(settings.seed)
    device = next(model.parameters()).device
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [p for _, p in trainable], lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    epochs_batches = [_epoch_batches(train_rows, settings, epoch) for epoch in range(settings.epochs)]
    total_steps = sum(len(b) for b in epochs_batches)
    warmup = max(1, int(total_steps * settings.warmup_ratio))
    report = TrainingReport()
    best: dict[str, torch.Tensor] | None = None
    best_loss = float("inf")
    stale = 0
    state = load_checkpoint(checkpoint_dir, trainable, optimizer)
    if state is not None:
        report = TrainingReport(**state["report"])
        report.resumed_from_step = report.steps
        best_loss, stale = state["best_loss"], state["stale"]
        best = state.get("best")
    started = time.perf_counter() - report.seconds
    model.train()
    step = 0
    for epoch, batches in enumerate(epochs_batches):
        if epoch < report.epochs_run:
            step += len(batches)
            continue
        for batch in batches:
            step += 1
            if step <= report.steps:  # done before the resume point
                continue
            loss, useful, completion = _loss([train_rows[i] for i in batch], model, pad_id, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], settings.max_grad_norm)
            for group in optimizer.param_groups:  # set from the step number, so a resumed run has the same rate
                group["lr"] = settings.learning_rate * _schedule(step - 1, warmup, total_steps)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            report.steps = step
            report.train_losses.append(float(loss.detach()))
            report.useful_tokens += useful
            report.completion_tokens += completion
            report.seconds = time.perf_counter() - started
            if progress:
                progress(step, total_steps, float(loss.detach()), report.useful_tokens / max(report.seconds, 1e-9))
            if step % settings.checkpoint_every == 0:
                save_checkpoint(checkpoint_dir, trainable, optimizer, _state(report, best_loss, stale, best))
        report.epochs_run = epoch + 1
        validation = (
            evaluate_loss(model, validation_rows, settings, pad_id) if validation_rows else float(loss.detach())
        )
        report.validation_losses.append(validation)
        if validation < best_loss - 1e-4:
            best_loss, stale, report.best_epoch = validation, 0, epoch + 1
            best = {name: p.detach().clone() for name, p in trainable}
        else:
            stale += 1
        save_checkpoint(checkpoint_dir, trainable, optimizer, _state(report, best_loss, stale, best))
        if stale >= settings.patience:
            break
    if best is not None:
        with torch.no_grad():
            for name, parameter in trainable:
                parameter.copy_(best[name])
    model.eval()
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


@torch.no_grad()
def evaluate_loss(model: Any, rows: Sequence[TrainRow], settings: LoopSettings, pad_id: int) -> float:
    """Mean loss per completion token over the rows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in token_budget_batches([len(r.tokens) for r in rows], settings.batch_tokens, settings.max_batch_size):
        loss, _, completion = _loss([rows[i] for i in batch], model, pad_id, device)
        total += float(loss) * completion
        count += completion
    if was_training:
        model.train()
    return total / max(count, 1)


def _schedule(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero."""
    return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))


def _epoch_batches(rows: Sequence[TrainRow], settings: LoopSettings, epoch: int) -> list[list[int]]:
    """Length-grouped batches in a seeded order that differs per epoch."""
    batches = token_budget_batches([len(r.tokens) for r in rows], settings.batch_tokens, settings.max_batch_size)
    random.Random(settings.seed * 1000 + epoch).shuffle(batches)
    return batches


def _loss(rows: list[TrainRow], model: Any, pad_id: int, device: Any) -> tuple[torch.Tensor, int, int]:
    """Mean cross-entropy over completion tokens; also the useful (non-pad) and completion token counts."""
    width = max(len(r.tokens) for r in rows)
    batch = len(rows)
    longest = max(r.completion for r in rows)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    targets = torch.full((batch, longest), -100, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, width - len(row.tokens) :] = torch.tensor(row.tokens)
        attention[b, width - len(row.tokens) :] = 1
        targets[b, longest - row.completion :] = torch.tensor(row.tokens[-row.completion :])
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    keep = torch.arange(width - longest - 1, width - 1)  # each position predicts the next token
    logits = training_logits(model, input_ids.to(device), attention.to(device), positions.to(device), keep.to(device))
    loss = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.to(device).reshape(-1), ignore_index=-100
    )
    completion = int((targets != -100).sum())
    return loss, int(attention.sum()), completion


def _state(
    report: TrainingReport, best_loss: float, stale: int, best: dict[str, torch.Tensor] | None
) -> dict[str, Any]:
    return {"report": report.__dict__.copy(), "best_loss": best_loss, "stale": stale, "best": best}
