"""The tuned rungs' search on the tiny llama: selected on validation only, recorded, cached, resumable."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.decision.assessment import SearchSummary
from harness.errors import InputError
from harness.rungs import RungContext
from tests.conftest import TICKETS, write_jsonl
from tests.pausing import kill_at, running_beside
from tests.tuning.test_tuning import LABELS, context
from tuning.search import SearchResult, read_result
from tuning.spaces import Range, SearchOptions
from tuning.tuned import LoraOptions, TunedPredictor

ROOT = Path(__file__).resolve().parents[2]
SEARCH = "{trials: 3, relative_budget: 10, space: {learning_rate: {low: 0.001, high: 0.05}}}"


def with_validation(ctx: RungContext) -> RungContext:
    from dataclasses import replace

    return replace(ctx, validation=ctx.train[:6], train=ctx.train[6:])


def search_task(folder: Path, model_dir: Path, test_rows: list[dict[str, Any]]) -> Path:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS * 3)]
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", rows)
    write_jsonl(folder / "test.jsonl", test_rows)
    (folder / "task.yaml").write_text(
        "name: tickets\n"
        f"model: {model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl, validation_size: 0.25}\n"
        f"rungs:\n  - {{rung: lora, r: 2, epochs: 2, batch_tokens: 256, max_batch_size: 4, search: {SEARCH}}}\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n"
        "forgetting: {enabled: false}\n",
        encoding="utf-8",
    )
    return folder / "task.yaml"


def trials_of(result: SearchResult | SearchSummary) -> list[tuple[Any, ...]]:
    return [
        (t.number, t.params, t.state, t.validation_metrics, [round(x, 6) for x in t.validation_losses], t.best_epoch)
        for t in result.trials
    ]


@pytest.mark.slow  # seconds, not milliseconds: `make test-fast` leaves it to `make test`
def test_the_search_never_reads_the_test_split(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Same task, test inputs and targets replaced by others: every trial and the choice are identical."""
    test_a = [{"id": f"a{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    test_b = [{"id": f"b{i}", "text": f"unrelated words {i}", "label": LABELS[i % 3]} for i in range(5)]
    results = []
    for name, test in (("a", test_a), ("b", test_b)):
        task = search_task(tmp_path / name, tiny_model_dir, test)
        out = tmp_path / f"{name}.json"
        run = CliRunner().invoke(main, ["assess", str(task), "-o", str(out)])
        assert run.exit_code == 0, run.output
        training = json.loads(out.read_text())["rungs"][0]["training"]
        results.append(SearchSummary.model_validate(training["search"]))
    first, second = results
    assert len(first.trials) == 3 and trials_of(first) == trials_of(second)
    assert first.chosen == second.chosen and first.chosen_params == second.chosen_params
    assert all(t.validation_metrics for t in first.trials if t.state == "complete")


def test_a_search_records_every_trial_caches_its_choice_and_a_rerun_trains_nothing(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    ctx = with_validation(context(tiny_model, tiny_tokenizer, tmp_path))
    space = {"learning_rate": Range(low=1e-3, high=5e-2)}
    config = LoraOptions(
        r=2,
        epochs=2,
        batch_tokens=256,
        max_batch_size=4,
        search=SearchOptions(trials=3, space=space, relative_budget=10),
    )
    first = TunedPredictor("lora", config, ctx)
    examples = [ctx.train[0].__class__("q", "charged twice again", "billing")]
    outputs = first.predict(examples)
    result = first.search_result()
    assert first.trained_now and result is not None and len(result.trials) == 3
    chosen = result.chosen_trial()
    assert chosen.state == "complete" and chosen.params == result.chosen_params
    card = first.card()
    assert card is not None and card.search is not None and card.search["chosen"] == result.chosen
    assert card.hyperparameters["learning_rate"] == pytest.approx(result.chosen_params["learning_rate"])
    assert card.training.selection_metric == "accuracy" and len(card.training.validation_metrics) >= 1
    assert result.seconds == pytest.approx(sum(t.seconds for t in result.trials))
    kept = [p.name for p in (tmp_path / "adapters").iterdir() if p.is_dir()]
    assert kept == [first.artifact_dir.name]  # trial artifacts other than the chosen one are removed
    again = TunedPredictor("lora", config, ctx)
    assert again.predict(examples) == outputs and not again.trained_now


def test_search_options_are_checked_against_the_rung(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    ctx = with_validation(context(tiny_model, tiny_tokenizer, tmp_path))
    fixed = LoraOptions(learning_rate=1e-3, search=SearchOptions(space={"learning_rate": [1e-3, 1e-2]}))
    with pytest.raises(InputError, match=r"search.space.learning_rate: also set as a fixed option"):
        TunedPredictor("lora", fixed, ctx)
    with pytest.raises(InputError, match=r"search.space.rank: not a training option"):
        TunedPredictor("lora", LoraOptions(search=SearchOptions(space={"rank": [4]})), ctx)
    with pytest.raises(InputError, match=r"search.metric: 'bleu' is not a classification metric"):
        TunedPredictor("lora", LoraOptions(search=SearchOptions(metric="bleu")), ctx)
    with pytest.raises(InputError, match=r"needs a validation split"):
        TunedPredictor("lora", LoraOptions(), context(tiny_model, tiny_tokenizer, tmp_path))
    assert not TunedPredictor("lora", LoraOptions(learning_rate=1e-3), ctx).space  # nothing left to search


@pytest.mark.slow
def test_a_killed_search_resumes_and_chooses_what_an_uninterrupted_one_does(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = [sys.executable, str(ROOT / "tests" / "search_worker.py"), str(tiny_model_dir)]
    killed = tmp_path / "killed"
    journal = killed / "searches"
    with running_beside([*worker, str(tmp_path / "clean")], env, tmp_path / "clean.log"):  # the uninterrupted one
        # kill while the second trial trains: the first is told, the second writes its first checkpoint (each
        # trial's first is step 1's; checkpoint_every is 1)
        kill_at([*worker, str(killed)], env, "checkpoint written */step-1-*:2")
        assert list((killed / "adapters").glob("*/card.json")) and list((killed / "adapters").glob("*.partial"))
        assert read_result(next(journal.iterdir())) is None
        subprocess.run([*worker, str(killed)], env=env, check=True)
    resumed = SearchResult.from_json(json.loads((killed / "result.json").read_text()))
    clean = SearchResult.from_json(json.loads((tmp_path / "clean" / "result.json").read_text()))
    assert trials_of(resumed) == trials_of(clean) and resumed.chosen_params == clean.chosen_params
    assert not list((killed / "adapters").glob("*.partial"))
    shutil.rmtree(tmp_path / "clean")


def test_a_prompting_rung_chooses_its_alternative_on_validation_only(tiny_model_dir: Path, tmp_path: Path) -> None:
    space = "{rung: few_shot, k: 1, search: {space: {k: [1, 2], selection: [fixed, random]}}}"
    choices = []
    for name, test in (("a", TICKETS), (("b", [(f"other words {i}", LABELS[i % 3]) for i in range(4)]))):
        task = search_task(
            tmp_path / name, tiny_model_dir, [{"id": f"x{i}", "text": t, "label": y} for i, (t, y) in enumerate(test)]
        )
        body = task.read_text().split("rungs:\n")[0] + f"rungs:\n  - {space}\n" + "forgetting: {enabled: false}\n"
        task.write_text(body)
        out = tmp_path / f"{name}.json"
        run = CliRunner().invoke(main, ["assess", str(task), "-o", str(out)])
        assert run.exit_code == 0, run.output
        rung = json.loads(out.read_text())["rungs"][0]
        selection = rung["selection"]
        values = [t["validation_metrics"][0] for t in selection["trials"]]
        assert len(values) == 8 and selection["validation_examples"] == 9  # each also with calibrate off and on
        assert values[selection["chosen"]] == max(values)
        assert all(rung["config"][k] == v for k, v in selection["chosen_params"].items())
        choices.append((values, selection["chosen"]))
    assert choices[0] == choices[1]


def _plan(options: SearchOptions, max_epochs: int = 5, per_epoch: int = 1) -> Any:
    from tuning.search import SearchPlan

    space = {"learning_rate": Range(low=1e-4, high=1e-2)}
    return SearchPlan(space, options, "accuracy", max_epochs, per_epoch, 0, first={"learning_rate": 1e-3})


def test_the_plan_prices_a_search_by_its_trials_and_pruner() -> None:
    from tuning.search import expected_epochs, stopping_epochs

    unbounded = {"relative_budget": 100.0}
    assert expected_epochs(_plan(SearchOptions(trials=6, pruner="none", **unbounded))) == 30
    # early stopping ends a run a patience after its best judgement, expected at 60% of its epochs
    assert stopping_epochs(5, 1.0) == 4.0 and stopping_epochs(2, 1.0) == 2.0
    assert expected_epochs(_plan(SearchOptions(trials=6, pruner="none", **unbounded)), complete_epochs=4.0) == 24
    halving = expected_epochs(_plan(SearchOptions(trials=6, **unbounded)))
    assert 5 + 5 < halving < 30  # the first trial runs to the end; successive halving stops most others early
    assert expected_epochs(_plan(SearchOptions(trials=12, **unbounded))) > halving
    assert expected_epochs(_plan(SearchOptions(trials=6, **unbounded)), complete_epochs=4.0) < halving
    # judged twice per epoch, a hopeless trial is stopped after half an epoch instead of a whole one
    assert expected_epochs(_plan(SearchOptions(trials=6, **unbounded), per_epoch=2)) < halving
    # by default the whole search trains at most twice its first trial
    assert expected_epochs(_plan(SearchOptions(trials=6)), complete_epochs=4.0) <= 8.0


def test_choices_of_a_searched_option_are_read_as_the_option_reads_them() -> None:
    from tuning.options import LoraOptions, rung_space
    from tuning.spaces import SearchOptions

    written = LoraOptions(search=SearchOptions(trials=2, space={"learning_rate": ["1e-3", "3e-3"]}))  # YAML 1.1 text
    assert rung_space("lora", written)["learning_rate"] == [1e-3, 3e-3]
    wrong = LoraOptions(search=SearchOptions(trials=2, space={"learning_rate": [1e-3, "fast"]}))
    with pytest.raises(InputError, match=r"rungs.lora.search.space.learning_rate\[1\]: .*'fast'"):
        rung_space("lora", wrong)


def test_a_grid_covered_by_ask_and_tell_ends_without_an_error(tmp_path: Path) -> None:
    from tuning.judging import Evaluation, Judgement
    from tuning.loop import EnoughTraining
    from tuning.search import SearchPlan, TrialOutcome, run_search
    from tuning.spaces import SearchOptions

    def trial(number: int, params: dict[str, Any], observe: Any) -> TrialOutcome:
        with contextlib.suppress(EnoughTraining):  # the second trial spends the rest of the search's budget
            observe(Evaluation(1, 1.0, Judgement(1.0, params["learning_rate"])))
        return TrialOutcome([params["learning_rate"]], [1.0], [1.0], 1, 1.0, 1, 0.0, "")

    grid = {"learning_rate": [1e-3, 3e-3]}
    result = run_search(tmp_path, SearchPlan(grid, SearchOptions(trials=2), "accuracy", 1, 1, 0, {}), trial)
    assert sorted(t.params["learning_rate"] for t in result.trials) == [1e-3, 3e-3]
    assert result.chosen_params == {"learning_rate": 3e-3}


def test_the_pruner_judges_early_on_the_loss_so_a_good_rate_stuck_on_the_majority_class_survives(
    tmp_path: Path,
) -> None:
    """The held-out spam filter's case (13.5 % spam, macro-F1): after the first evaluation the good learning
    rate still answers "ham" to everything (macro-F1 0.463) while a worse one scores 0.5 by luck; their
    losses already tell them apart. Judged on the metric the good rate was pruned; judged on the loss it goes
    on and wins."""
    from tuning.judging import Evaluation, Judgement
    from tuning.search import SearchPlan, TrialOutcome, run_search

    curves = [  # (validation macro-F1, validation loss) per evaluation, in the order the trials run
        ([0.50, 0.55, 0.58, 0.60], [0.40, 0.38, 0.37, 0.37]),  # the first trial: never pruned
        ([0.463, 0.902, 0.947, 0.973], [0.13, 0.08, 0.06, 0.05]),  # the good rate: majority class at first
    ]
    ran: list[int] = []

    def trial(number: int, params: dict[str, Any], observe: Any) -> TrialOutcome:
        from tuning.loop import EnoughTraining

        metrics, losses = curves[len(ran)]
        ran.append(number)
        for index, (metric, loss) in enumerate(zip(metrics, losses, strict=True), 1):
            try:
                observe(Evaluation(index, index / 2, Judgement(loss, metric)))
            except EnoughTraining:  # the search's budget ends it at its last evaluation here
                assert index == 4
        best = max(range(4), key=lambda i: metrics[i]) + 1
        return TrialOutcome(metrics, losses, [0.5, 1.0, 1.5, 2.0], best, 2.0, 8, 1.0, f"a{len(ran)}")

    space = {"learning_rate": Range(low=1e-4, high=1e-2)}
    plan = SearchPlan(space, SearchOptions(trials=2), "macro_f1", 2, 2, 0, first={"learning_rate": 3e-4})
    result = run_search(tmp_path, plan, trial)
    assert [t.state for t in result.trials] == ["complete", "complete"]
    assert result.chosen == 1 and result.chosen_trial().best_epoch == 2.0


def test_the_whole_search_trains_at_most_twice_its_first_trial_and_a_trial_it_ends_may_be_chosen(
    tmp_path: Path,
) -> None:
    """The first trial runs 2 epochs; the second keeps improving and would run 4, but the search's default
    relative budget (2x the first trial's epochs) ends it after 2, like early stopping: complete, with its
    best judgement's weights, and chosen. Nothing is left for a third trial."""
    from tuning.judging import Evaluation, Judgement
    from tuning.loop import EnoughTraining
    from tuning.search import SearchPlan, TrialOutcome, run_search

    curves = [[0.5, 0.6, 0.65, 0.66, 0.60], [0.55, 0.7, 0.8, 0.85, 0.87, 0.88, 0.89, 0.9]]
    epochs_run: list[float] = []

    def trial(number: int, params: dict[str, Any], observe: Any) -> TrialOutcome:
        metrics, judged = curves[number], []
        for index, metric in enumerate(metrics, 1):
            judged.append(metric)
            try:
                observe(Evaluation(index, index / 2, Judgement(1.0 - metric, metric)))
            except EnoughTraining:
                break
            if number == 0 and index == 4:  # early stopping of the first trial
                break
        epochs_run.append(len(judged) / 2)
        best = max(range(len(judged)), key=lambda i: judged[i]) + 1
        losses = [1.0 - m for m in judged]
        epochs = [i / 2 for i in range(1, len(judged) + 1)]
        return TrialOutcome(judged, losses, epochs, best, len(judged) / 2, 8, 1.0, f"a{number}")

    space = {"learning_rate": Range(low=1e-4, high=1e-2)}
    plan = SearchPlan(space, SearchOptions(trials=4), "accuracy", 5, 2, 0, first={"learning_rate": 1e-3})
    result = run_search(tmp_path, plan, trial)
    assert epochs_run == [2.0, 2.0] and sum(t.epochs_run for t in result.trials) == 4.0
    assert [t.state for t in result.trials] == ["complete", "complete"]
    assert result.chosen == 1 and result.chosen_trial().best_epoch == 2.0


def test_a_second_search_of_the_family_starts_from_the_first_ones_choice(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    """lora r=4 after lora r=2 on the same task (qlora after lora in the example): the first trial is the
    first search's choice, run alone (a quarter of the trials, one at least); without warm starts, the whole
    search runs."""
    ctx = with_validation(context(tiny_model, tiny_tokenizer, tmp_path))
    base = {"epochs": 1, "batch_tokens": 256, "max_batch_size": 4}
    first = TunedPredictor("lora", LoraOptions(r=2, **base, search=SearchOptions(trials=2)), ctx)
    first.prepare()
    chosen = first.search_result()
    assert chosen is not None and chosen.warm_start is None and len(chosen.trials) == 2
    second = TunedPredictor("lora", LoraOptions(r=4, **base, search=SearchOptions(trials=2)), ctx)
    second.prepare()
    warm = second.search_result()
    assert warm is not None and warm.warm_start is not None
    assert warm.warm_start["method"] == "lora" and warm.warm_start["params"] == chosen.chosen_params
    assert len(warm.trials) == 1 and warm.trials[0].params == chosen.chosen_params
    cold = TunedPredictor("lora", LoraOptions(r=8, **base, search=SearchOptions(trials=2, warm_start=False)), ctx)
    cold.prepare()
    result = cold.search_result()
    assert result is not None and result.warm_start is None and len(result.trials) == 2
