"""Training-seed spread on close calls: which tuned rung is retrained, and how its seeds enter the decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from advisor.decision.assessment import Recommendation, RungResult, SeedRun
from advisor.decision.seeds import close_call_rungs, with_seed_runs
from advisor.measure.assess import measure_rungs, retrained_from_seed
from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
from advisor.measure.rung_builder import bound_rungs
from advisor.task.spec import DecisionSection
from tests.advisor.decision.test_decide import N, run, rung
from tests.conftest import TICKETS, write_jsonl


def seed_run(seed: int, correct: np.ndarray) -> SeedRun:
    return SeedRun(
        seed=seed,
        metrics={"accuracy": float(correct.mean())},
        predictions=["a"] * len(correct),
        scores=[{"correct": float(c), "value": float(c)} for c in correct],
    )


def test_seeds_that_disagree_widen_the_interval_and_the_decision_uses_their_mean() -> None:
    """lora is clearly ahead with its first seed (+0.10); its two other seeds score like zero_shot."""
    zero = np.arange(N) < 120
    lucky = zero.copy()
    lucky[120:140] = True
    alone = run(rung("zero_shot", 0, zero), rung("lora", 3, lucky))
    assert alone.rung == "lora"
    plain = rung("lora", 3, lucky).model_copy(update={"seed_runs": [seed_run(1, zero), seed_run(2, zero.copy())]})
    seeded = run(rung("zero_shot", 0, zero), plain)
    assert seeded.rung == "zero_shot", seeded.rejected
    said = seeded.rejected["lora"]
    assert "3 training seeds: 0.700, 0.600, 0.600 (mean 0.633, sd 0.058), decided on their mean" in said
    assert "ahead of zero_shot by 0.033" in said


def test_seeds_that_agree_keep_a_clear_win() -> None:
    zero = np.arange(N) < 120
    better = zero.copy()
    better[120:150] = True
    again = better.copy()
    again[150:152] = True
    seeded = rung("lora", 3, better).model_copy(update={"seed_runs": [seed_run(1, again), seed_run(2, better)]})
    advice = run(rung("zero_shot", 0, zero), seeded)
    assert advice.rung == "lora" and "3 training seeds" in advice.reasons[0]


def advice_with(mde: dict[str, float], chosen: str) -> Recommendation:
    return Recommendation(rung=chosen, summary="", reasons=[], rejected={}, mde=mde)


def test_the_tuned_rung_within_the_mde_of_the_shipped_one_is_retrained() -> None:
    zero, lora, full = (
        rung(n, s, np.arange(N) < k) for n, s, k in (("zero_shot", 0, 120), ("lora", 3, 130), ("full", 4, 170))
    )
    advice = advice_with({"lora": 0.12, "full": 0.12}, "zero_shot")  # lora +0.05 (inside), full +0.25 (outside)
    assert close_call_rungs(advice, [zero, lora, full], limit=3) == [lora]
    assert close_call_rungs(advice_with({"lora": 0.4}, "zero_shot"), [zero, lora], limit=3) == []  # MDE too wide
    tuned_pick = advice_with({"zero_shot": 0.12}, "lora")
    assert close_call_rungs(tuned_pick, [zero, lora], limit=1) == [lora]  # a tuned pick near a prompt


def test_seeds_are_trained_as_asked_and_not_at_all_when_off() -> None:
    zero, lora = rung("zero_shot", 0, np.arange(N) < 120), rung("lora", 3, np.arange(N) < 130)
    asked: list[tuple[str, int]] = []

    def retrain(result: RungResult, seed: int) -> SeedRun:
        asked.append((result.name, seed))
        return seed_run(seed, np.arange(N) < 125)

    advice = advice_with({"lora": 0.12}, "zero_shot")
    seeded = with_seed_runs([zero, lora], DecisionSection(), 7, lambda _: advice, retrain)
    assert asked == [("lora", 8), ("lora", 9)] and [s.seed for s in seeded[1].seed_runs] == [8, 9]
    assert not seeded[0].seed_runs
    asked.clear()
    off = with_seed_runs([zero, lora], DecisionSection(seeds="off"), 7, lambda _: advice, retrain)
    assert asked == [] and off == [zero, lora]


def test_the_task_file_says_how_many_seeds() -> None:
    assert DecisionSection.model_validate({"seeds": False}).seeds == "off"  # YAML's bare off
    assert DecisionSection.model_validate({"seeds": 5}).seeds == 5
    with pytest.raises(ValidationError, match="2 to 10 training seeds, or off"):
        DecisionSection.model_validate({"seeds": 1})


def test_a_tuned_rung_retrained_from_another_seed_is_stored_apart_and_answers_the_test(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(tmp_path / "train.jsonl", rows[0::2])
    write_jsonl(tmp_path / "test.jsonl", rows[1::2])
    task = tmp_path / "task.yaml"
    task.write_text(
        "name: seeds\n"
        f"model: {tiny_model_dir}\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        "rungs:\n  - {rung: lora, r: 2, epochs: 1, batch_tokens: 256, max_batch_size: 8, search: false}\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n"
        "forgetting: {enabled: false}\n"
        "decision: {seeds: off}\n",
        encoding="utf-8",
    )
    options = AssessOptions(store_path=tmp_path / "store" / "results.sqlite")
    prepared = prepare_run(task, options, QuietHooks())
    [lora] = measure_rungs(prepared, options, QuietHooks())
    assert not lora.seed_runs  # seeds: off
    with bound_rungs(prepared) as rungs:
        again = retrained_from_seed(prepared, rungs, lora, 1, QuietHooks())
    assert again is not None and again.seed == 1 and again.training_seconds
    assert len(again.predictions) == len(again.scores) == 6 and "accuracy" in again.metrics
    with bound_rungs(prepared) as rungs:
        stored = retrained_from_seed(prepared, rungs, lora, 1, QuietHooks())
    assert stored is not None and stored.training_seconds is None  # read back, not trained again
    assert (stored.predictions, stored.scores) == (again.predictions, again.scores)
    adapters = [p for p in tmp_path.rglob("adapters/*") if p.is_dir()]
    assert len(adapters) == 2  # seed 0's and seed 1's, each under its own key


def test_the_table_shows_the_seed_spread_beside_the_test_interval() -> None:
    from advisor.report.formatting import table_cells
    from tests.advisor.decision.test_decide import assessment

    zero = np.arange(N) < 120
    seeded = rung("lora", 3, zero).model_copy(update={"seed_runs": [seed_run(1, np.arange(N) < 110)]})
    _, rows = table_cells(assessment(rung("zero_shot", 0, zero), seeded))
    assert rows[1][1].endswith(" · 2 seeds 0.575 ± 0.035") and " · " not in rows[0][1]
