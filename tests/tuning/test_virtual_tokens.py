"""Prompt and prefix tuning: training moves the loss, and the engine scores exactly what was trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.inference.engine import ChoiceRequest, Engine
from harness.types import Example
from tests.conftest import TICKETS
from tests.tuning.test_tuning import LABELS, context
from tuning.judging import evaluate_loss
from tuning.loop import LoopSettings, TrainRow, Validation, train
from tuning.methods import trainable_model
from tuning.tuned import TunedPredictor, VirtualTokenOptions
from tuning.virtual_tokens import soft_prefix, training_logits

METHODS = ["prompt_tuning", "prefix_tuning"]


def rows(tokenizer: Any) -> list[TrainRow]:
    return [TrainRow((*tuple(tokenizer(t)["input_ids"]), 5, 9, 2), 3) for t, _ in TICKETS]


@pytest.mark.parametrize("method", METHODS)
def test_a_few_steps_make_the_loss_fall(method: str, tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    model = trainable_model(method, tiny_model, VirtualTokenOptions(num_virtual_tokens=4), init_tokens=[5, 6, 7])
    data = rows(tiny_tokenizer)
    settings = LoopSettings(epochs=4, learning_rate=5e-2, batch_tokens=256, max_batch_size=4, patience=4)
    before = evaluate_loss(model, data, pad_id=2)
    train(model, data, Validation(data), settings, tmp_path / "ckpt", pad_id=2)
    # a few virtual tokens in front of a random 2-layer model can only move it so far (~0.17 here)
    assert evaluate_loss(model, data, pad_id=2) < before - 0.1
    assert all(not p.requires_grad for p in tiny_model.parameters() if p.grad is not None)


@pytest.mark.parametrize("method", METHODS)
def test_padding_does_not_change_a_rows_logits(method: str, tiny_model: Any) -> None:
    """The virtual tokens sit at positions 0..n-1 whatever the padding, unlike peft's own forward."""
    model = trainable_model(method, tiny_model, VirtualTokenOptions(num_virtual_tokens=3), init_tokens=[5, 6])
    model.eval()
    tokens = torch.tensor([[11, 12, 13, 14]])
    padded = torch.tensor([[2, 2, 11, 12, 13, 14]])
    with torch.no_grad():
        alone = training_logits(model, tokens, torch.ones_like(tokens), torch.arange(4)[None], torch.arange(4))
        mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        shifted = training_logits(model, padded, mask, positions, torch.arange(2, 6))
    assert torch.allclose(alone, shifted, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_engine_with_the_soft_prefix_scores_what_training_computes(
    method: str, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    model = trainable_model(method, tiny_model, VirtualTokenOptions(num_virtual_tokens=3), init_tokens=[5, 6])
    with torch.no_grad():  # move the virtual tokens away from their start so the test can fail
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.5)
    model.eval()
    context_ids, choices = (11, 12, 13), ((21, 22), (23,))
    engine = Engine(model.base_model, tiny_tokenizer, soft_prefix=soft_prefix(model))
    for prefix in ((), (30, 31)):
        scored = engine.score([ChoiceRequest(context_ids, choices)], prefix=prefix)[0]
        expected = []
        for choice in choices:
            ids = torch.tensor([[*prefix, *context_ids, *choice]])
            with torch.no_grad():
                logits = training_logits(
                    model, ids, torch.ones_like(ids), torch.arange(ids.shape[1])[None], torch.arange(ids.shape[1])
                )
            logprobs = torch.log_softmax(logits[0], -1)
            start = len(prefix) + len(context_ids)
            expected.append(float(sum(logprobs[start - 1 + i, t] for i, t in enumerate(choice))))
        assert scored == pytest.approx(expected, abs=1e-4)
    generated = engine.generate([list(context_ids)], max_new_tokens=3)[0]
    assert generated.completion_tokens >= 1


@pytest.mark.parametrize("method", METHODS)
def test_rung_trains_saves_and_reloads_identically(
    method: str, tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    ctx = context(tiny_model, tiny_tokenizer, tmp_path)
    config = VirtualTokenOptions(num_virtual_tokens=4, epochs=1, batch_tokens=256, max_batch_size=4, search=False)
    first = TunedPredictor(method, config, ctx)
    examples = [Example("q1", "charged twice again", "billing"), Example("q2", "app crashes", "technical")]
    outputs = first.predict(examples)
    assert first.trained_now and all(o.text in LABELS for o in outputs)
    card = first.card()
    assert card is not None and card.hyperparameters["num_virtual_tokens"] == 4
    assert 0 < card.trainable_share < 0.2
    again = TunedPredictor(method, config, ctx)
    assert again.predict(examples) == outputs and not again.trained_now
