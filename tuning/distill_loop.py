"""Distillation onto a label set: the student learns the teacher's distribution over the labels.

The student's score of a label is its log-likelihood of the label's tokens after the prompt (as it
will answer); its distribution is the softmax of those scores at temperature T, the teacher's the
softmax of its own label log-likelihoods at T. The loss is KL(teacher || student) x T^2 (Hinton et
al., 2015). Every epoch is judged by the task's metric on the validation split (gold answers), and
epoch 0 (the untrained student) competes too.
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tuning.answer_scores import answer_logprobs
from tuning.batch_loss import TrainRow, completion_logprobs
from tuning.judging import metric_in_eval_mode
from tuning.loop import learning_rate_factor, restore, snapshot
from tuning.virtual_tokens import virtual_token_type


@dataclass(frozen=True)
class SoftExample:
    """One input's rows (the prompt followed by each label, in label order) and the teacher's probabilities."""

    rows: tuple[TrainRow, ...]
    teacher: tuple[float, ...]


@dataclass(frozen=True)
class DistillSettings:
    """How long and how fast to train, and how soft the targets are."""

    epochs: int = 3
    learning_rate: float = 4e-4
    temperature: float = 2.0
    examples_per_batch: int = 8
    micro_batch_tokens: int = 512  # padded tokens per forward pass (every label row of an input), as tuning/loop.py
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0


@dataclass
class DistillReport:
    """Per step the loss; per epoch agreement with the teacher's top label and the validation metric."""

    step_losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)  # per step
    tokens_per_s: list[float] = field(default_factory=list)  # per step: tokens so far / seconds so far
    teacher_agreement: list[float] = field(default_factory=list)  # share of train inputs, per epoch
    validation_metrics: list[float] = field(default_factory=list)  # [0] the untrained student
    best_epoch: int = 0
    epochs_run: int = 0
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


def train_distillation(
    model: Any,
    examples: Sequence[SoftExample],
    settings: DistillSettings,
    pad_id: int,
    *,
    prefix: Sequence[int] = (),
    metric: Callable[[Any], float] | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> DistillReport:
    """Train the model's trainable weights in place; leave the best epoch's weights in it."""
    torch.manual_seed(settings.seed)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for _, p in trainable], lr=settings.learning_rate, weight_decay=0.0)
    report = DistillReport()
    started = time.perf_counter()
    if metric is not None:
        report.validation_metrics.append(metric_in_eval_mode(model, metric))
    best = snapshot(trainable)
    best_score = report.validation_metrics[0] if metric is not None else float("-inf")
    order = list(range(len(examples)))
    total = -(-len(examples) // settings.examples_per_batch) * settings.epochs
    warmup = max(1, int(total * settings.warmup_ratio))
    model.train()
    for epoch in range(settings.epochs):
        random.Random(settings.seed * 1000 + epoch).shuffle(order)
        agreed = 0
        for start in range(0, len(order), settings.examples_per_batch):
            batch = [examples[i] for i in order[start : start + settings.examples_per_batch]]
            loss, agree = accumulated_soft_backward(model, batch, settings, pad_id, prefix)
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], settings.max_grad_norm)
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * learning_rate_factor(report.steps, warmup, total)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            agreed += agree
            report.steps += 1
            report.tokens += sum(len(row.tokens) for item in batch for row in item.rows)
            report.step_losses.append(loss)
            report.learning_rates.append(optimizer.param_groups[0]["lr"])
            report.seconds = time.perf_counter() - started
            report.tokens_per_s.append(report.tokens / max(report.seconds, 1e-9))
            if progress:
                progress(report.steps, total, report.step_losses[-1], report.tokens / max(report.seconds, 1e-9))
        report.epochs_run = epoch + 1
        report.teacher_agreement.append(agreed / max(len(examples), 1))
        score = float(epoch)  # without a metric, the last epoch
        if metric is not None:
            report.validation_metrics.append(metric_in_eval_mode(model, metric))
            score = round(report.validation_metrics[-1], 9)
        if score > best_score:
            best, best_score, report.best_epoch = snapshot(trainable), score, epoch + 1
    restore(trainable, best)
    model.eval()
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def accumulated_soft_backward(
    model: Any, batch: Sequence[SoftExample], settings: DistillSettings, pad_id: int, prefix: Sequence[int]
) -> tuple[float, int]:
    """Backward of the batch's mean loss in micro-batches of at most `micro_batch_tokens` padded tokens
    (every label row of an input counted), each weighted by its share of the inputs; the loss and agreement."""
    total, agreed = 0.0, 0
    for part in _micro_batches(batch, settings.micro_batch_tokens):
        loss, agree = soft_loss(model, part, settings.temperature, pad_id, prefix)
        weight = len(part) / len(batch)
        (loss * weight).backward()
        total += float(loss.detach()) * weight
        agreed += agree
    return total, agreed


def _micro_batches(batch: Sequence[SoftExample], budget: int) -> list[list[SoftExample]]:
    """Consecutive inputs whose padded tokens (the prompt once, then each label) fit the budget."""
    parts: list[list[SoftExample]] = []
    current: list[SoftExample] = []
    longest = 0
    for item in batch:
        split = prompt_and_answers(item)
        if split is None:
            width = max(len(row.tokens) for row in item.rows) * len(item.rows)
        else:
            width = len(split[0]) + len(item.rows) * max(len(answer) for answer in split[1])
        if current and max(longest, width) * (len(current) + 1) > budget:
            parts.append(current)
            current, longest = [], 0
        current.append(item)
        longest = max(longest, width)
    return [*parts, current] if current else parts


def prompt_and_answers(item: SoftExample) -> tuple[tuple[int, ...], list[tuple[int, ...]]] | None:
    """The prompt every label row of the input shares, and each label's tokens; None if they differ."""
    prompts = {row.tokens[: len(row.tokens) - row.completion] for row in item.rows}
    if len(prompts) != 1:
        return None
    return prompts.pop(), [row.tokens[len(row.tokens) - row.completion :] for row in item.rows]


def label_scores(model: Any, batch: Sequence[SoftExample], pad_id: int, prefix: Sequence[int]) -> torch.Tensor:
    """[inputs, labels]: the student's log-likelihood of each label, each prompt run once when it can be."""
    split = [prompt_and_answers(item) for item in batch]
    answers = split[0][1] if split[0] is not None else None
    if virtual_token_type(model) is None and all(s is not None and s[1] == answers for s in split):
        return answer_logprobs(model, [s[0] for s in split if s is not None], answers or [], pad_id, prefix)
    rows = [row for item in batch for row in item.rows]  # virtual tokens, or inputs with different prompts
    return completion_logprobs(rows, model, pad_id, prefix).reshape(len(batch), len(batch[0].rows))


def soft_loss(
    model: Any, batch: Sequence[SoftExample], temperature: float, pad_id: int, prefix: Sequence[int]
) -> tuple[torch.Tensor, int]:
    """KL(teacher || student) x T^2 over each input's labels, averaged; and how many top labels agree."""
    scores = label_scores(model, batch, pad_id, prefix)
    student = torch.log_softmax(scores / temperature, dim=-1)
    teacher = torch.tensor([item.teacher for item in batch], dtype=student.dtype, device=student.device)
    loss = torch.nn.functional.kl_div(student, teacher, reduction="batchmean") * temperature**2
    agree = int((scores.argmax(-1) == teacher.argmax(-1)).sum())
    return loss, agree


def teacher_distribution(logprobs: Sequence[float | None], temperature: float) -> tuple[float, ...]:
    """The teacher's label log-likelihoods (None: not offered) as probabilities at the temperature."""
    top = max(lp / temperature for lp in logprobs if lp is not None)
    weights = [0.0 if lp is None else math.exp(lp / temperature - top) for lp in logprobs]
    total = sum(weights)
    return tuple(w / total for w in weights)
