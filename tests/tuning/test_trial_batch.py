"""A search's trials trained together over one base: each follows the curve it follows alone, and the search
chooses what a search of one trial at a time chooses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tuning.test_loop import rows_of, settings
from tests.tuning.test_search import with_validation
from tests.tuning.test_tuning import LORA, context
from tuning.judging import Evaluation, Validation
from tuning.loop import LoopSettings, Pruned, TrainingRun, train, train_runs
from tuning.methods import add_lora, trainable_model
from tuning.options import LoraOptions
from tuning.spaces import SearchOptions
from tuning.trial_batch import AdapterTeam, trial_adapters
from tuning.tuned import TunedPredictor

RATES = (2e-2, 8e-2, 5e-3)
PREFIX = (7, 11, 13, 17)


def prune_second_run_after(evaluations: int) -> Callable[[int], Callable[[Evaluation], None]]:
    def observer(index: int) -> Callable[[Evaluation], None]:
        def observe(evaluation: Evaluation) -> None:
            if index == 1 and evaluation.number == evaluations:
                raise Pruned("pruned by the test")

        return observe

    return observer


def alone(tiny_model: Any, rows: Any, loop: LoopSettings, folder: Path, observe: Any) -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    try:
        report = train(model, rows, Validation(rows[:4]), loop, folder, pad_id=2, prefix=PREFIX, on_evaluation=observe)
    except Pruned as stop:
        return None, stop.report
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}, report


@pytest.mark.parametrize("packing", ["off", "on"])
def test_trials_trained_together_follow_the_curves_each_follows_alone(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path, packing: str
) -> None:
    """Three learning rates, a shared prompt prefix, the second run pruned after its second evaluation: the
    others go on without it. Losses, judgements and the kept weights match the runs trained one by one."""
    rows = rows_of(tiny_tokenizer)
    loops = [settings(learning_rate=rate, evaluations_per_epoch=2, packing=packing) for rate in RATES]
    observer = prune_second_run_after(2)
    solo = [alone(tiny_model, rows, loop, tmp_path / f"solo{i}", observer(i)) for i, loop in enumerate(loops)]

    torch.manual_seed(0)
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    names = trial_adapters(model, lambda team, name: add_lora(team, LoraOptions(**LORA), name), len(RATES), 0)
    team = AdapterTeam(model, names, pad_id=2, prefix=PREFIX, settings=loops[0])
    runs = []
    for index, (name, loop) in enumerate(zip(names, loops, strict=True)):
        run = TrainingRun(team.trainable(name), loop, Validation(rows[:4]), tmp_path / f"team{index}", observer(index))
        team.join(run, name)
        runs.append(run)
    torch.manual_seed(0)
    train_runs(model, runs, rows, 2, team.backward, prefix=PREFIX, focus=team.focus)
    team.close()

    assert runs[1].pruned is not None and len(runs[1].report.validation_losses) == 2
    assert runs[0].report.steps > runs[1].report.steps  # the others went on without it
    for run, (weights, report) in zip(runs, solo, strict=True):
        together = run.report
        assert together.steps == report.steps and together.evaluation_epochs == report.evaluation_epochs
        assert together.train_losses == pytest.approx(report.train_losses, rel=1e-4, abs=1e-5)
        assert together.validation_losses == pytest.approx(report.validation_losses, rel=1e-4, abs=1e-5)
        assert together.best_evaluation == report.best_evaluation
        assert together.useful_tokens == report.useful_tokens
        if weights is not None:
            mine = dict(run.trainable)
            assert mine.keys() == weights.keys()
            for name, tensor in weights.items():
                torch.testing.assert_close(mine[name], tensor, rtol=1e-3, atol=1e-5)


def searched(tiny_model: Any, tiny_tokenizer: Any, folder: Path, at_once: int) -> Any:
    ctx = with_validation(context(tiny_model, tiny_tokenizer, folder))
    grid = {"learning_rate": [3e-3, 1e-2, 3e-2, 1e-1]}
    search = SearchOptions(trials=4, space=grid, relative_budget=10, trials_at_once=at_once)
    config = LoraOptions(r=2, epochs=2, batch_tokens=256, max_batch_size=4, evaluations_per_epoch=2, search=search)
    predictor = TunedPredictor("lora", config, ctx)
    predictor.prepare()
    return predictor


@pytest.mark.slow
def test_a_search_of_trials_trained_together_chooses_what_one_trial_at_a_time_chooses(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    """A grid of four learning rates with successive halving: the same trials, the same pruning decisions, the
    same curves and the same choice whether the four train one after another or in one pass."""
    one = searched(tiny_model, tiny_tokenizer, tmp_path / "one", 1)
    four = searched(tiny_model, tiny_tokenizer, tmp_path / "four", 4)
    first, second = one.search_result(), four.search_result()
    assert first is not None and second is not None
    assert [(t.number, t.params, t.state, t.steps) for t in first.trials] == [
        (t.number, t.params, t.state, t.steps) for t in second.trials
    ]
    for a, b in zip(first.trials, second.trials, strict=True):
        assert a.validation_losses == pytest.approx(b.validation_losses, rel=1e-4)
        assert a.validation_metrics == pytest.approx(b.validation_metrics)
    assert first.chosen == second.chosen and first.chosen_params == second.chosen_params
    assert one.card() is not None and four.card() is not None
    examples = list(with_validation(context(tiny_model, tiny_tokenizer, tmp_path)).validation)
    assert one.predict(examples) == four.predict(examples)  # the chosen adapter saved as if it trained alone


def test_how_many_trials_train_together(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    """As many as asked (never more than the search runs); "auto" is one trial at a time off CUDA, where a pass over
    more rows costs in proportion; a method that cannot add adapters always trains its trials alone."""
    ctx = with_validation(context(tiny_model, tiny_tokenizer, tmp_path))
    lora = TunedPredictor("lora", LoraOptions(r=2, search=SearchOptions(trials=4)), ctx).trainer
    assert lora.trials_at_once("auto", 4) == 1
    assert lora.trials_at_once(3, 4) == 3 and lora.trials_at_once(8, 4) == 4 and lora.trials_at_once(3, 1) == 1
    from tuning.ia3 import Ia3Config

    ia3 = TunedPredictor("ia3", Ia3Config(search=SearchOptions(trials=4)), ctx).trainer
    assert ia3.trials_at_once(4, 4) == 1
