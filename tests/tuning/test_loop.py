"""The training loop's judgements: a few per epoch, early stopping on them, extension while still improving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import TICKETS
from tests.tuning.test_tuning import LABELS, LORA, context
from tuning.judging import Evaluation, Judgement, Validation, evaluate_loss
from tuning.loop import LoopSettings, TrainRow, evaluation_steps, train
from tuning.methods import trainable_model
from tuning.options import LoraOptions
from tuning.tuned import TunedPredictor


def rows_of(tokenizer: Any) -> list[TrainRow]:
    return [TrainRow((*tuple(tokenizer(t)["input_ids"]), 5, 9, 2), 3) for t, _ in TICKETS]


def settings(**overrides: Any) -> LoopSettings:
    base = {"epochs": 2, "learning_rate": 2e-2, "batch_tokens": 64, "max_batch_size": 3, "checkpoint_every": 1000}
    return LoopSettings(**{**base, **overrides})


def test_evaluation_steps_spread_over_the_epoch_and_end_it() -> None:
    assert evaluation_steps(10, 2) == {5: 0.5, 10: 1.0}
    assert evaluation_steps(7, 3) == {3: 1 / 3, 5: 2 / 3, 7: 1.0}
    assert evaluation_steps(1, 2) == {1: 1.0}  # an epoch of one step is judged once, at its end


def test_a_run_is_judged_several_times_per_epoch_and_the_observer_hears_each(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    heard: list[Evaluation] = []
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    report = train(
        model,
        rows_of(tiny_tokenizer),
        Validation(rows_of(tiny_tokenizer)[:4]),
        settings(evaluations_per_epoch=2, patience=10),
        tmp_path / "c",
        pad_id=2,
        on_evaluation=heard.append,
    )
    assert report.evaluation_epochs == [0.5, 1.0, 1.5, 2.0] and report.epochs_run == 2.0
    assert [(e.number, e.epoch) for e in heard] == [(1, 0.5), (2, 1.0), (3, 1.5), (4, 2.0)]
    assert [e.judgement.loss for e in heard] == report.validation_losses
    best = report.best_evaluation
    assert report.validation_losses[best - 1] == min(report.validation_losses)
    assert report.best_epoch == report.evaluation_epochs[best - 1]


def test_patience_counts_epochs_of_evaluations_and_stops_mid_epoch(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    """A judge that never improves after the first evaluation: one epoch of patience is two evaluations."""
    flat = Validation(judge=lambda model: Judgement(1.0, 0.5))
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    report = train(
        model,
        rows_of(tiny_tokenizer),
        flat,
        settings(epochs=5, evaluations_per_epoch=2, patience=1),
        tmp_path / "c",
        pad_id=2,
    )
    assert report.evaluation_epochs == [0.5, 1.0, 1.5] and report.best_evaluation == 1


def test_a_run_still_improving_at_its_last_epoch_goes_on_exactly_as_a_longer_run(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    """The learning rate is constant after its warm-up, so the extra epochs follow the longer run's curve."""
    rows = rows_of(tiny_tokenizer)
    improving = iter(range(100))  # every evaluation better than the last
    judge = Validation(judge=lambda model: Judgement(1.0, float(next(improving))))
    extended_model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    extended = train(extended_model, rows, judge, settings(epochs=2, extra_epochs=2), tmp_path / "a", pad_id=2)
    longer_model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    improving = iter(range(100))
    judge = Validation(judge=lambda model: Judgement(1.0, float(next(improving))))
    longer = train(longer_model, rows, judge, settings(epochs=4), tmp_path / "b", pad_id=2)
    assert extended.epochs_run == longer.epochs_run == 4.0
    assert extended.train_losses == longer.train_losses and extended.learning_rates == longer.learning_rates
    for (name, a), (_, b) in zip(extended_model.named_parameters(), longer_model.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_a_run_past_its_best_is_not_extended(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    values = iter([0.9, 0.5, 0.4, 0.3])  # best at the first epoch's end
    judge = Validation(judge=lambda model: Judgement(1.0, next(values)))
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    many = settings(epochs=2, extra_epochs=2, patience=5)
    report = train(model, rows_of(tiny_tokenizer), judge, many, tmp_path / "c", pad_id=2)
    assert report.epochs_run == 2.0 and report.best_evaluation == 1


def test_one_scoring_pass_gives_the_validation_loss_and_metric(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    """The gold label's score from the pass that picks the answers is the loss a separate pass would compute."""
    from dataclasses import replace

    ctx = context(tiny_model, tiny_tokenizer, tmp_path)
    ctx = replace(ctx, validation=ctx.train[:6], train=ctx.train[6:])
    predictor = TunedPredictor("lora", LoraOptions(r=2, learning_rate=1e-2, search=False), ctx)
    model = predictor.trainer.fresh_model()
    judge = predictor.trainer.validation_judge()
    assert judge is not None
    judgement = judge(model)
    prefix, _, validation_rows = predictor.trainer.encoded_rows()
    separate = evaluate_loss(model, validation_rows, tiny_tokenizer.pad_token_id, prefix)
    assert judgement.loss == pytest.approx(separate, rel=1e-4)
    answered = predictor.task.answer_with(predictor.task.engine_for(model), ctx.validation)
    correct = sum(o.text == e.target for o, e in zip(answered, ctx.validation, strict=True))
    assert judgement.metric == pytest.approx(correct / len(ctx.validation))
    assert set(LABELS) >= {o.text for o in answered}


def test_a_fixed_run_uses_the_method_prior_scaled_by_the_model_size() -> None:
    from tuning.spaces import default_space, prior_learning_rate

    assert prior_learning_rate("lora", 135_000_000) == pytest.approx(1e-3)
    assert prior_learning_rate("lora", 70_000_000_000) == pytest.approx(3e-4)
    assert 3e-4 < prior_learning_rate("lora", 5_000_000_000) < 1e-3
    assert prior_learning_rate("full", 135_000_000) == pytest.approx(1e-4)
    space = default_space("qlora", 135_000_000)["learning_rate"]
    assert (space.low, space.high) == (pytest.approx(3.16e-4), pytest.approx(3.16e-3))  # one decade around 1e-3


def test_epochs_written_in_the_task_are_kept_unless_extra_epochs_is_too() -> None:
    assert LoraOptions().extension() == 3
    assert LoraOptions(epochs=2).extension() == 0
    assert LoraOptions(epochs=2, extra_epochs=4).extension() == 4


def test_the_rate_warms_up_then_decays_as_the_inverse_square_root_of_the_step() -> None:
    from tuning.loop import rate_at

    assert [rate_at(step, 4) for step in (1, 2, 4)] == [0.25, 0.5, 1.0]
    assert rate_at(16, 4) == pytest.approx(0.5) and rate_at(64, 4) == pytest.approx(0.25)
