"""Preference training (DPO/IPO) of a model's trainable weights, judged after every epoch.

The reference is the model as it starts (the SFT adapter, frozen): its log-probabilities of every
chosen and rejected answer are computed once, before the first step, which is exactly what a second,
frozen copy of the adapter would give at every step, at a third of the forward passes. Each epoch is
judged on the validation pairs (loss, reward accuracy and margin) and, when the caller gives one, by
the task's metric on the validation split; epoch 0 (the SFT adapter itself) competes too, so
preference training that does not help is not kept.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tuning.batch_loss import TrainRow, completion_logprobs
from tuning.judging import metric_in_eval_mode
from tuning.loop import learning_rate_factor, restore, snapshot
from tuning.preference_loss import LossType, PreferenceLoss, preference_loss


@dataclass(frozen=True)
class PairRows:
    """A preference pair as two training rows over the same prompt."""

    chosen: TrainRow
    rejected: TrainRow


@dataclass(frozen=True)
class PreferenceSettings:
    """How long, how fast and how sharply to train."""

    epochs: int = 2
    learning_rate: float = 5e-5
    beta: float = 0.1
    loss_type: LossType = "sigmoid"
    pairs_per_batch: int = 8
    micro_batch_tokens: int = 512  # padded tokens per forward pass (both answers of each pair), as tuning/loop.py
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0


@dataclass
class PreferenceReport:
    """Per step the loss; per epoch the pairs' rewards and log-probs, on train and validation; the choice."""

    step_losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)  # per step
    tokens_per_s: list[float] = field(default_factory=list)  # per step: tokens so far / seconds so far
    train_reward_accuracy: list[float] = field(default_factory=list)  # from the epoch's own steps
    train_reward_margin: list[float] = field(default_factory=list)
    chosen_logps: list[float] = field(default_factory=list)  # mean over the epoch's train steps
    rejected_logps: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    validation_reward_accuracy: list[float] = field(default_factory=list)
    validation_reward_margin: list[float] = field(default_factory=list)
    validation_metrics: list[float] = field(default_factory=list)  # [0] is the SFT adapter, before any step
    best_epoch: int = 0  # 0: preference training did not beat the SFT adapter on validation
    epochs_run: int = 0
    steps: int = 0
    pairs_seen: int = 0
    tokens: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


Progress = Callable[[int, int, float, float], None]  # step, total steps, loss, pairs/s


def train_preferences(
    model: Any,
    pairs: Sequence[PairRows],
    validation: Sequence[PairRows],
    settings: PreferenceSettings,
    pad_id: int,
    *,
    prefix: Sequence[int] = (),
    metric: Callable[[Any], float] | None = None,
    progress: Progress | None = None,
) -> PreferenceReport:
    """Train in place against the starting model as reference, and leave the best epoch's weights in it."""
    torch.manual_seed(settings.seed)
    mean = settings.loss_type == "ipo"
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for _, p in trainable], lr=settings.learning_rate, weight_decay=0.0)
    report = PreferenceReport()
    started = time.perf_counter()
    reference = reference_logprobs(model, [*pairs, *validation], pad_id, prefix, mean)
    train_reference, validation_reference = reference[: len(pairs)], reference[len(pairs) :]
    if metric is not None:
        report.validation_metrics.append(metric_in_eval_mode(model, metric))
    best = snapshot(trainable)
    best_score = _score(report, metric, -1, validation)
    order = list(range(len(pairs)))
    per_epoch = -(-len(pairs) // settings.pairs_per_batch)
    total = per_epoch * settings.epochs
    warmup = max(1, int(total * settings.warmup_ratio))
    model.train()
    for epoch in range(settings.epochs):
        random.Random(settings.seed * 1000 + epoch).shuffle(order)
        seen: list[StepRewards] = []
        for start in range(0, len(order), settings.pairs_per_batch):
            batch = order[start : start + settings.pairs_per_batch]
            step = accumulated_pair_backward(model, pairs, batch, train_reference, settings, pad_id, prefix)
            seen.append(step)
            loss = step.loss
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], settings.max_grad_norm)
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * learning_rate_factor(report.steps, warmup, total)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            report.steps += 1
            report.pairs_seen += len(batch)
            report.tokens += sum(len(pairs[i].chosen.tokens) + len(pairs[i].rejected.tokens) for i in batch)
            report.step_losses.append(loss)
            report.learning_rates.append(optimizer.param_groups[0]["lr"])
            report.seconds = time.perf_counter() - started
            report.tokens_per_s.append(report.tokens / max(report.seconds, 1e-9))
            if progress:
                progress(report.steps, total, report.step_losses[-1], report.pairs_seen / max(report.seconds, 1e-9))
        report.epochs_run = epoch + 1
        _record_train_rewards(seen, settings.beta, report)
        _judge(model, validation, validation_reference, settings, pad_id, prefix, report)
        if metric is not None:
            report.validation_metrics.append(metric_in_eval_mode(model, metric))
        score = _score(report, metric, epoch, validation)
        if score > best_score:
            best, best_score, report.best_epoch = snapshot(trainable), score, epoch + 1
    restore(trainable, best)
    model.eval()
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


@torch.no_grad()
def reference_logprobs(
    model: Any, pairs: Sequence[PairRows], pad_id: int, prefix: Sequence[int], mean: bool, batch: int = 16
) -> torch.Tensor:
    """(pairs, 2): the model's log-probs of each chosen and rejected answer, as it is now."""
    was_training = model.training
    model.eval()
    values = []
    for start in range(0, len(pairs), batch):
        part = pairs[start : start + batch]
        rows = [p.chosen for p in part] + [p.rejected for p in part]
        logps = completion_logprobs(rows, model, pad_id, prefix, mean=mean).float().cpu()
        values.append(torch.stack([logps[: len(part)], logps[len(part) :]], dim=-1))
    if was_training:
        model.train()
    return torch.cat(values) if values else torch.zeros((0, 2))


@dataclass(frozen=True)
class StepRewards:
    """One step's mean loss, and per pair the implicit rewards and the reference log-probs they rest on."""

    loss: float
    chosen: torch.Tensor
    rejected: torch.Tensor
    reference: torch.Tensor  # (pairs, 2)


def accumulated_pair_backward(
    model: Any,
    pairs: Sequence[PairRows],
    batch: Sequence[int],
    reference: torch.Tensor,
    settings: PreferenceSettings,
    pad_id: int,
    prefix: Sequence[int],
) -> StepRewards:
    """Backward of the batch's mean pair loss, in micro-batches of at most `micro_batch_tokens` padded tokens.

    Each micro-batch's mean is weighted by its share of the batch's pairs, so the gradient is the whole
    batch's (up to summation order) while activations stay bounded, as in tuning/loop.py.
    """
    total = 0.0
    chosen, rejected, order = [], [], []
    for part in _micro_batches(pairs, batch, settings.micro_batch_tokens):
        result = _pair_loss(model, [pairs[i] for i in part], reference[list(part)], settings, pad_id, prefix)
        weight = len(part) / len(batch)
        (result.loss * weight).backward()
        total += float(result.loss.detach()) * weight
        chosen.append(result.chosen_rewards.float().cpu())
        rejected.append(result.rejected_rewards.float().cpu())
        order += list(part)
    return StepRewards(total, torch.cat(chosen), torch.cat(rejected), reference[order])


def _record_train_rewards(steps: Sequence[StepRewards], beta: float, report: PreferenceReport) -> None:
    """The epoch's train rewards and log-probs, from its own steps (as trl logs them): no second pass."""
    chosen = torch.cat([s.chosen for s in steps])
    rejected = torch.cat([s.rejected for s in steps])
    reference = torch.cat([s.reference for s in steps])
    report.train_reward_accuracy.append(float((chosen > rejected).float().mean()))
    report.train_reward_margin.append(float((chosen - rejected).mean()))
    report.chosen_logps.append(float((chosen / beta + reference[:, 0]).mean()))
    report.rejected_logps.append(float((rejected / beta + reference[:, 1]).mean()))


def _micro_batches(pairs: Sequence[PairRows], batch: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive slices of the batch whose two rows per pair, padded to the longest, fit the budget."""
    parts: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in batch:
        width = max(len(pairs[index].chosen.tokens), len(pairs[index].rejected.tokens))
        if current and max(longest, width) * 2 * (len(current) + 1) > budget:
            parts.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, width)
    return [*parts, current] if current else parts


def _pair_loss(
    model: Any,
    batch: Sequence[PairRows],
    reference: torch.Tensor,
    settings: PreferenceSettings,
    pad_id: int,
    prefix: Sequence[int],
) -> PreferenceLoss:
    rows = [p.chosen for p in batch] + [p.rejected for p in batch]
    logps = completion_logprobs(rows, model, pad_id, prefix, mean=settings.loss_type == "ipo")
    count = len(batch)
    device = logps.device
    return preference_loss(
        logps[:count],
        logps[count:],
        reference[:, 0].to(device),
        reference[:, 1].to(device),
        settings.beta,
        settings.loss_type,
    )


@torch.no_grad()
def _judge(
    model: Any,
    validation: Sequence[PairRows],
    validation_reference: torch.Tensor,
    settings: PreferenceSettings,
    pad_id: int,
    prefix: Sequence[int],
    report: PreferenceReport,
) -> None:
    """The epoch's loss, reward accuracy and margin on the validation pairs."""
    was_training = model.training
    model.eval()
    mean = settings.loss_type == "ipo"
    if validation:
        held = reference_logprobs(model, validation, pad_id, prefix, mean)
        judged = preference_loss(
            held[:, 0],
            held[:, 1],
            validation_reference[:, 0],
            validation_reference[:, 1],
            settings.beta,
            settings.loss_type,
        )
        report.validation_losses.append(float(judged.loss))
        report.validation_reward_accuracy.append(judged.accuracy)
        report.validation_reward_margin.append(judged.margin)
    if was_training:
        model.train()


def _score(
    report: PreferenceReport, metric: Callable[[Any], float] | None, epoch: int, validation: Sequence[PairRows]
) -> float:
    """An epoch's rank (-1: before training): the task metric on validation, else minus the validation loss."""
    if metric is not None:
        return round(report.validation_metrics[epoch + 1], 9)
    if epoch < 0:
        return float("-inf")  # without the task's metric, any trained epoch beats the untrained reference
    if not validation:
        return float(epoch)  # nothing to judge by: the last epoch
    return -report.validation_losses[epoch]
