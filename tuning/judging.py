"""How a training run is judged on the validation split: a loss, and the task's metric when the rung has one.

A rung that answers by scoring its labels gets both from one pass: the scores it picks its answer
from include the gold label's log-likelihood, which is the validation loss (tuning/tuned.py builds
such a judge). Without a judge, the loss is computed on the validation rows, or is the last train
loss when there are none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.inference.batching import token_budget_batches
from tuning.batch_loss import TrainRow, batch_loss


@dataclass(frozen=True)
class Judgement:
    """One evaluation of the model: loss per validation answer token, and the metric (higher is better)."""

    loss: float
    metric: float | None = None


Judge = Callable[[Any], Judgement]


@dataclass(frozen=True)
class Evaluation:
    """One judgement in a run: its number (from 1) and place (in epochs: 1.5 is halfway through the second)."""

    number: int
    epoch: float
    judgement: Judgement


@dataclass(frozen=True)
class Validation:
    """How an evaluation is judged: the rung's own judge, else the loss on these rows."""

    rows: Sequence[TrainRow] = ()
    judge: Judge | None = None
    metric_name: str = "loss"


def judge_in_eval_mode(model: Any, judge: Judge) -> Judgement:
    """The judgement of the model in eval mode (dropout off), leaving it in the mode it was in."""
    was_training = model.training
    model.eval()
    judgement = judge(model)
    if was_training:
        model.train()
    return judgement


def metric_in_eval_mode(model: Any, metric: Callable[[Any], float]) -> float:
    """The metric of the model in eval mode (dropout off), leaving it in the mode it was in."""
    was_training = model.training
    model.eval()
    value = float(metric(model))
    if was_training:
        model.train()
    return value


def rank(loss: float, metric: float | None) -> tuple[float, float]:
    """An evaluation's rank: its metric (higher is better), then its loss (lower is better).

    A loss difference below 1e-4 is no improvement, so a plateau is seen as one.
    """
    rounded = -round(loss, 4)
    return (round(metric, 9), rounded) if metric is not None else (rounded, rounded)


@torch.no_grad()
def evaluate_loss(
    model: Any,
    rows: Sequence[TrainRow],
    pad_id: int,
    prefix: Sequence[int] = (),
    *,
    batch_tokens: int = 2048,
    max_batch_size: int = 16,
) -> float:
    """Mean loss per completion token over the rows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in token_budget_batches([len(r.tokens) for r in rows], batch_tokens, max_batch_size):
        result = batch_loss([rows[i] for i in batch], model, pad_id, prefix)
        total += float(result.loss) * result.completion_tokens
        count += result.completion_tokens
    if was_training:
        model.train()
    return total / max(count, 1)
