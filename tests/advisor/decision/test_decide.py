"""The recommendation policy on hand-built rung results: each scenario's chosen rung and its stated reasons."""

from __future__ import annotations

import re

import numpy as np
import pytest

from advisor.decision.assessment import (
    Assessment,
    CostSummary,
    Environment,
    ForgettingSummary,
    LatencySummary,
    MetricValue,
    RecordSummary,
    RungResult,
    TaskSummary,
    TokenSummary,
)
from advisor.decision.compare import compare_together
from advisor.decision.decide import DataFacts, decide
from advisor.decision.majority import majority_baseline
from advisor.task.spec import ConstraintsSection, DecisionSection, FactsSection
from harness.metrics.measurement import Measurement

N = 200


def answers(rate: float, seed: int, base: np.ndarray | None = None, flips: float = 0.0) -> np.ndarray:
    """Correct/incorrect per example; with `base`, a copy of it with a share of answers flipped to `rate`."""
    rng = np.random.default_rng(seed)
    if base is None:
        return rng.random(N) < rate
    changed = rng.random(N) < flips
    return np.where(changed, rng.random(N) < rate, base)


def rung(
    name: str,
    step: int,
    correct: np.ndarray,
    *,
    per_1k: float = 0.01,
    p95: float = 0.2,
    forgetting: float | None = None,
) -> RungResult:
    value = float(correct.mean())
    half = 1.96 * (value * (1 - value) / len(correct)) ** 0.5
    records = [
        RecordSummary(
            id=f"e{i}",
            input="x",
            target="a" if c else "b",
            output="a",
            prediction="a",
            correct=bool(c),
            prompt_tokens=10,
            completion_tokens=1,
            latency_s=0.01,
            scores={"correct": float(c), "value": float(c)},
        )
        for i, c in enumerate(correct)
    ]
    changed = forgetting is not None
    return RungResult(
        name=name,
        kind=name,
        step=step,
        tuned=step >= 3,
        config={},
        primary_metric="accuracy",
        metrics={"accuracy": MetricValue(value=value, ci_low=value - half, ci_high=value + half)},
        latency=LatencySummary(p50_s=p95 / 2, p95_s=p95, sample_size=16, batched_examples_per_s=10.0),
        tokens=TokenSummary(prompt_mean=10, completion_mean=1),
        no_label_outputs=0,
        computed=len(correct),
        reused=0,
        cost=CostSummary(
            hosting="self_hosted",
            per_1k=per_1k,
            monthly=per_1k * 100,
            requests_per_month=100_000,
            self_hosted_per_1k=per_1k,
            api_per_1k=per_1k,
        ),
        forgetting=ForgettingSummary(
            weights_changed=changed,
            probes="shipped",
            delta=forgetting,
            ci_low=None if forgetting is None else forgetting - 0.02,
            ci_high=None if forgetting is None else forgetting + 0.02,
        ),
        records=records,
    )


def assessment(*rungs: RungResult) -> Assessment:
    return Assessment(
        created_at="2026-11-22T00:00:00+00:00",
        task=TaskSummary(
            name="t",
            type="classification",
            file="task.yaml",
            model="m",
            model_fingerprint="f",
            labels=["a", "b"],
            prompt={},
            seed=0,
            n_train=500,
            n_validation=0,
            n_test=len(rungs[0].records),
            limit=None,
            data_hashes={},
        ),
        environment=Environment(
            device="cpu", precision="float32", cpu="x", threads=2, python="3", torch="2", transformers="5", ladder="0"
        ),
        rungs=list(rungs),
    )


def run(
    *rungs: RungResult,
    constraints: ConstraintsSection | None = None,
    facts: FactsSection | None = None,
    data: DataFacts | None = None,
):
    return decide(
        assessment(*rungs),
        constraints or ConstraintsSection(),
        facts or FactsSection(),
        DecisionSection(),
        data or DataFacts(n_train=500, smallest_class=200),
        Measurement(resamples=500),
    )


def test_a_clear_winner_is_chosen_and_every_cheaper_rung_is_shown_clearly_worse() -> None:
    zero = answers(0.3, 1)
    result = run(rung("zero_shot", 0, zero), rung("few_shot", 1, answers(0.5, 2)), rung("lora", 3, answers(0.9, 3)))
    assert result.rung == "lora" and result.best == "lora"
    assert result.summary.startswith("Fine-tune")
    assert "clearly worse than lora" in result.rejected["zero_shot"]
    assert "MDE" in result.rejected["few_shot"] and "simultaneous over 3 rungs" in result.rejected["few_shot"]
    assert not result.evidence_thin


def test_a_tie_within_tolerance_ships_the_cheaper_rung() -> None:
    zero = answers(0.8, 1)
    lora = answers(0.8, 2, base=zero, flips=0.02)  # nearly the same answers
    result = run(rung("zero_shot", 0, zero), rung("lora", 3, lora, per_1k=0.02))
    assert result.rung == "zero_shot"
    assert result.summary.startswith("Ship the prompt")
    assert "lora" in result.rejected and "zero_shot" in result.reasons[0]


def test_a_constraint_removes_the_best_rung() -> None:
    result = run(
        rung("zero_shot", 0, answers(0.3, 1)),
        rung("few_shot", 1, answers(0.7, 2)),
        rung("lora", 3, answers(0.9, 3), p95=2.0),
        constraints=ConstraintsSection(max_p95_latency_s=0.5),
    )
    assert result.rung == "few_shot" and result.best == "few_shot"
    assert "p95 latency 2.000 s exceeds the budget of 0.500 s" in result.rejected["lora"]


def test_forgetting_vetoes_a_tuned_rung() -> None:
    result = run(
        rung("zero_shot", 0, answers(0.4, 1)),
        rung("lora", 3, answers(0.9, 3), forgetting=-0.10),
        constraints=ConstraintsSection(max_forgetting=0.05),
    )
    assert result.rung == "zero_shot"
    assert "forgets too much" in result.rejected["lora"] and "0.050 allowed" in result.rejected["lora"]


def test_thin_evidence_is_said_with_how_many_more_examples_would_settle_it() -> None:
    zero = np.arange(N) < 120  # 0.60
    lora = zero.copy()
    lora[120:140] = True  # 20 answers only lora gets right
    lora[:12] = False  # 12 only zero_shot gets right: lora is 0.04 ahead, McNemar p ~ 0.2
    result = run(rung("zero_shot", 0, zero), rung("lora", 3, lora))
    assert result.rung == "zero_shot" and result.evidence_thin
    assert result.more_examples_needed is not None and result.more_examples_needed > 0
    assert any("more test examples would settle" in w for w in result.warnings)
    # 32 disagreements in 200 examples: the MDE (about 0.07) is over the 0.03 margin, so it says so
    assert "underpowered: a difference under 0.0" in result.rejected["lora"]
    assert "could not be seen with 200 examples" in result.rejected["lora"]
    assert result.underpowered == ["lora"] and 0.03 < result.mde["lora"] < 0.1
    assert result.examples_for_margin is not None and result.examples_for_margin > 200
    assert "underpowered" in result.reasons[0] and "too small to tell" in result.summary


def test_no_rung_meets_the_constraints() -> None:
    result = run(rung("zero_shot", 0, answers(0.3, 1)), constraints=ConstraintsSection(min_quality=0.9))
    assert result.rung is None and "below the required 0.900" in result.rejected["zero_shot"]


def test_declared_facts_and_data_become_warnings() -> None:
    result = run(
        rung("zero_shot", 0, answers(0.2, 1)),
        rung("rag", 2, answers(0.5, 2)),
        rung("lora", 3, answers(0.95, 3)),
        facts=FactsSection(knowledge_changes_often=True),
        data=DataFacts(n_train=60, smallest_class=4, audit_codes=("leakage",), quality_cap=0.9),
    )
    text = " ".join(result.warnings)
    assert result.rung == "lora"
    assert "knowledge changes often" in text and "rag" in text
    assert "smallest class has 4" in text and "leakage" in text and "0.900" in text


def test_the_assessment_round_trips_through_its_schema() -> None:
    original = assessment(rung("zero_shot", 0, answers(0.3, 1)), rung("lora", 3, answers(0.9, 3), forgetting=-0.01))
    original.recommendation = decide(
        original,
        ConstraintsSection(),
        FactsSection(),
        DecisionSection(),
        DataFacts(n_train=500),
        Measurement(resamples=200),
    )
    again = Assessment.model_validate_json(original.model_dump_json())
    assert again == original and again.schema_version == 1


@pytest.mark.parametrize("tolerance,expected", [(0.0, "lora"), (0.2, "zero_shot")])
def test_the_tolerance_decides_how_much_quality_a_step_up_must_buy(tolerance: float, expected: str) -> None:
    zero = answers(0.7, 1)
    lora = np.where(answers(0.5, 9), True, zero)  # strictly more right: clearly better, by about 0.15
    result = decide(
        assessment(rung("zero_shot", 0, zero), rung("lora", 3, lora)),
        ConstraintsSection(),
        FactsSection(),
        DecisionSection(),
        DataFacts(n_train=500),
        Measurement(resamples=500, tolerance=tolerance),
    )
    assert result.rung == expected


def searched(base: RungResult, warnings: list[str], validation_examples: int = 300) -> RungResult:
    """The rung as a tuned one whose search left these warnings."""
    from advisor.decision.assessment import SearchSummary, SearchTrial, TrainingSummary

    trial = SearchTrial(
        number=0, params={"learning_rate": 1e-3}, state="complete", validation_metrics=[0.5, 0.6], best_epoch=2
    )
    search = SearchSummary(
        metric="accuracy",
        space={"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}},
        trials=[trial],
        chosen=0,
        chosen_params={"learning_rate": 1e-3},
        max_epochs=2,
        seconds=10.0,
        warnings=warnings,
    )
    training = TrainingSummary(
        seconds=10.0,
        peak_rss_mb=1.0,
        trainable_parameters=1,
        trainable_share=0.1,
        epochs_run=2,
        best_epoch=2,
        useful_tokens=1,
        useful_tokens_per_s=1.0,
        train_losses=[1.0],
        validation_losses=[1.0, 0.9],
        artifact="a",
        trained_now=True,
        selection_metric="accuracy",
        validation_metrics=[0.5, 0.6],
        validation_examples=validation_examples,
        search=search,
    )
    return base.model_copy(update={"training": training})


def test_a_tuned_rung_that_lost_carries_its_search_warnings_in_its_reason() -> None:
    prompt = rung("few_shot", 1, answers(0.8, 1))
    note = "may be under-trained: validation accuracy still rising at the last epoch (2)"
    tuned = searched(rung("lora", 3, answers(0.6, 2)), [note], validation_examples=38)
    advice = run(prompt, tuned)
    assert advice.rung == "few_shot"
    reason = advice.rejected["lora"]
    assert reason.startswith("higher on the ladder than few_shot") and f"note: lora: {note}" in reason
    assert "behind few_shot by 0.2" in reason
    assert "only 38 validation examples" in reason and "not refit on train + validation" in reason
    alone = run(rung("zero_shot", 0, answers(0.3, 3)), searched(rung("lora", 3, answers(0.9, 4)), [note]))
    assert alone.rung == "lora" and f"lora: {note}" in alone.warnings


def tied_prompt_and_adapter() -> tuple[RungResult, RungResult]:
    """few_shot and lora answer nearly alike; lora costs a quarter per request and $0.02 to train."""
    prompt_answers = answers(0.8, 11)
    prompt = rung("few_shot_similar", 1, prompt_answers, per_1k=0.0150, p95=0.9)
    tuned = rung("lora", 3, answers(0.8, 12, base=prompt_answers, flips=0.05), per_1k=0.0037, p95=0.2)
    assert tuned.cost is not None
    tuned = tuned.model_copy(update={"cost": tuned.cost.model_copy(update={"training": 0.02, "monthly": 0.37})})
    assert prompt.cost is not None
    prompt = prompt.model_copy(update={"cost": prompt.cost.model_copy(update={"monthly": 1.50})})
    return prompt, tuned


@pytest.mark.parametrize("prefer,expected", [("ladder", "few_shot_similar"), ("cost", "lora"), ("latency", "lora")])
def test_the_tie_break_the_user_chooses_decides_a_tie(prefer: str, expected: str) -> None:
    prompt, tuned = tied_prompt_and_adapter()
    advice = decide(
        assessment(prompt, tuned),
        ConstraintsSection(),
        FactsSection(),
        DecisionSection(prefer=prefer),  # type: ignore[arg-type]
        DataFacts(n_train=500),
        Measurement(resamples=500),
    )
    assert advice.rung == expected and advice.prefer == prefer
    if prefer == "ladder":
        assert advice.rejected["lora"].startswith("higher on the ladder than few_shot_similar (adapter against")
        [call] = advice.close_calls
        assert call.rung == "lora" and call.monthly_saving() == pytest.approx(1.13)
        assert call.repaid_month == pytest.approx(0.02 / 1.13)
    if prefer == "cost":
        assert "cheaper over 12 months than few_shot_similar ($4.46 against $18.00" in advice.reasons[0]
        assert advice.summary.startswith("Fine-tune: lora, the lowest total cost over 12 months")


def test_costs_within_twenty_percent_count_as_tied_and_the_ladder_breaks_the_tie() -> None:
    prompt, tuned = tied_prompt_and_adapter()
    assert prompt.cost is not None and tuned.cost is not None
    near = tuned.model_copy(update={"cost": tuned.cost.model_copy(update={"monthly": 1.30, "training": 0.0})})
    advice = decide(
        assessment(prompt, near),
        ConstraintsSection(),
        FactsSection(),
        DecisionSection(prefer="cost"),
        DataFacts(n_train=500),
        Measurement(resamples=500),
    )
    assert advice.rung == "few_shot_similar"
    assert "about as costly over 12 months as few_shot_similar" in advice.rejected["lora"]
    assert "first in the ladder's order, ships" in advice.rejected["lora"]


def test_more_examples_come_from_the_discordant_pairs() -> None:
    """The same observed gap needs more examples when the rungs disagree on more of them."""
    zero = np.arange(N) < 120
    few_disagreements = zero.copy()
    few_disagreements[120:126] = True  # 6 only the tuned rung gets right, 2 only zero_shot: +0.02
    few_disagreements[:2] = False
    many_disagreements = zero.copy()
    many_disagreements[120:156] = True  # 36 against 32: the same +0.02 over far more disagreement
    many_disagreements[:32] = False
    few = run(rung("zero_shot", 0, zero), rung("lora", 3, few_disagreements))
    many = run(rung("zero_shot", 0, zero), rung("lora", 3, many_disagreements))
    assert few.more_examples_needed is not None and many.more_examples_needed is not None
    assert many.more_examples_needed > 3 * few.more_examples_needed


def test_a_rung_that_does_not_clearly_beat_the_majority_class_is_named() -> None:
    """zero_shot answers like the majority class (always 'b'); lora learned something."""
    targets_a = np.arange(N) < 30  # 15% of the test examples are 'a'
    lazy = ~targets_a  # right exactly where the target is 'b'
    built = assessment(rung("zero_shot", 0, lazy), rung("lora", 3, np.arange(N) >= 10))
    for result in built.rungs:
        for i, record in enumerate(result.records):
            record.target = "a" if targets_a[i] else "b"
            record.prediction = record.target if record.correct else ("b" if targets_a[i] else "a")
    built.task.majority_label = "b"
    advice = decide(
        built,
        ConstraintsSection(),
        FactsSection(),
        DecisionSection(),
        DataFacts(n_train=500),
        Measurement(resamples=300),
    )
    assert advice.rejected["zero_shot"].startswith("no better than always answering 'b', which scores accuracy 0.850")
    assert advice.rung == "lora" and not any("lora does not" in w for w in advice.warnings)
    assert advice.floor == "majority class (always 'b')"


def test_imbalanced_labels_rank_on_macro_f1_unless_the_task_file_chooses() -> None:
    from harness.metrics.task_metrics import choose_primary_metric

    spam = choose_primary_metric("classification", None, {"ham": 692, "spam": 108})
    assert spam.metric == "macro_f1" and "imbalanced" in spam.reason
    assert choose_primary_metric("classification", None, {"a": 60, "b": 25}).metric == "accuracy"
    assert choose_primary_metric("classification", "accuracy", {"ham": 692, "spam": 108}).metric == "accuracy"
    assert choose_primary_metric("qa", None, {}).metric == "f1"


def test_an_unknown_primary_metric_in_the_task_file_is_one_clear_error(tmp_path) -> None:
    from advisor.task.spec import load_task
    from harness.errors import InputError

    (tmp_path / "task.yaml").write_text("name: t\nprimary_metric: bogus\ndata: {path: d.jsonl}\n", encoding="utf-8")
    with pytest.raises(InputError, match="primary_metric 'bogus' is not a classification metric"):
        load_task(tmp_path / "task.yaml")


def test_the_interval_beside_a_verdict_widens_with_the_rungs_compared_at_once() -> None:
    """lora is right on 14 examples zero_shot misses, wrong on 4 it gets (+0.05).

    Alone, zero_shot is clearly worse. Beside five more rungs that answer independently, zero_shot is
    compared with six at once: the simultaneous interval of the same pair is wider, and includes zero.
    """
    zero = np.arange(N) < 120
    lora = zero.copy()
    lora[120:134] = True
    lora[:4] = False
    alone = run(rung("zero_shot", 0, zero), rung("lora", 3, lora))
    assert alone.rung == "lora" and "clearly worse than lora" in alone.rejected["zero_shot"]
    others = [rung(f"prompt_{i}", 1, answers(0.6, 10 + i)) for i in range(5)]
    crowd = run(rung("zero_shot", 0, zero), *others, rung("lora", 3, lora))
    narrow = re.search(r"accuracy -0\.050 \[(-0\.\d+), (-0\.\d+)\]", alone.rejected["zero_shot"])
    wide = re.search(r"accuracy \+0\.050 \[([-+]0\.\d+), (\+0\.\d+)\]", crowd.rejected["lora"])
    assert narrow and wide, crowd.rejected["lora"]
    assert float(wide[2]) - float(wide[1]) > float(narrow[2]) - float(narrow[1])
    assert crowd.rung == "zero_shot" and "underpowered" in crowd.rejected["lora"]


def test_two_identical_rungs_cost_no_power() -> None:
    """A copy of lora adds a comparison whose answers are the same: the critical value does not grow."""
    zero = np.arange(N) < 120
    lora = zero.copy()
    lora[120:134] = True
    lora[:4] = False
    twice = run(rung("zero_shot", 0, zero), rung("few_shot", 1, lora.copy()), rung("lora", 3, lora))
    assert twice.rung == "few_shot" and "clearly worse than" in twice.rejected["zero_shot"]
    assert "the same answers on all 200 examples" in twice.rejected["lora"]


def labelled(name: str, step: int, targets: list[str], predictions: list[str]) -> RungResult:
    """A rung whose records answer `predictions` to `targets` (correct where they match)."""
    made = rung(name, step, np.array([t == p for t, p in zip(targets, predictions, strict=True)]))
    for record, target, prediction in zip(made.records, targets, predictions, strict=True):
        record.target, record.prediction, record.output = target, prediction, prediction
    return made


def floor_advice(primary: str, labels: list[str], majority: str, *rungs: RungResult):
    built = assessment(*rungs)
    built.task.labels, built.task.majority_label = labels, majority
    for result in built.rungs:
        result.primary_metric = primary
        result.metrics[primary] = result.metrics["accuracy"]  # decide reads the value; the floor recomputes
    baseline = majority_baseline(built)
    assert baseline is not None
    for result in built.rungs:  # the rungs' own values on the metric, computed as the baseline's are
        value = compare_together([result, baseline], "classification", labels, primary).family.values[0]
        result.metrics[primary] = MetricValue(value=float(value), ci_low=float(value), ci_high=float(value))
    return decide(built, ConstraintsSection(), FactsSection(), DecisionSection(), DataFacts(n_train=500))


def test_a_one_class_test_set_answered_wrongly_ships_nothing() -> None:
    """Every test example is 'ham'; zero_shot says 'spam' to all: macro-F1 0.000 against 1.000."""
    targets = ["ham"] * 40
    advice = floor_advice("macro_f1", ["ham", "spam"], "ham", labelled("zero_shot", 0, targets, ["spam"] * 40))
    assert advice.rung is None and advice.floor == "majority class (always 'ham')"
    assert advice.summary.startswith("Nothing ships: no rung beats always answering 'ham' (macro_f1 1.000)")
    assert "label more examples" in advice.summary and "stronger model" in advice.summary
    assert advice.rejected["zero_shot"].startswith("clearly worse than always answering 'ham'")
    assert "macro_f1 -1.000 [-1.000, -1.000]" in advice.rejected["zero_shot"]


def test_the_starter_task_numbers_ship_nothing() -> None:
    """advisor init's task, 12 test examples: zero_shot right on 3, always 'praise' on 4 (accuracy 0.333)."""
    targets = ["praise"] * 4 + ["complaint"] * 4 + ["question"] * 4
    zero = ["complaint"] * 4 + ["complaint"] + ["praise"] * 3 + ["question"] * 2 + ["praise"] * 2
    wrote = ["question"] * 12
    advice = floor_advice(
        "accuracy",
        ["praise", "complaint", "question"],
        "praise",
        labelled("zero_shot", 0, targets, zero),
        labelled("zero_shot_generate", 0, targets, wrote),
    )
    assert advice.rung is None and advice.summary.startswith("Nothing ships")
    assert advice.rejected["zero_shot"].startswith("no better than always answering 'praise'")


def test_a_rung_just_above_the_floor_ships_with_a_warning() -> None:
    """Ahead of always-'praise' by one example: eligible, and the warning says it is not clearly ahead."""
    targets = ["praise"] * 4 + ["complaint"] * 4 + ["question"] * 4
    better = ["praise"] * 4 + ["complaint"] + ["praise"] * 7
    advice = floor_advice(
        "accuracy", ["praise", "complaint", "question"], "praise", labelled("zero_shot", 0, targets, better)
    )
    assert advice.rung == "zero_shot" and advice.summary.startswith("Ship zero_shot")
    assert any(w.startswith("zero_shot does not clearly beat always answering 'praise'") for w in advice.warnings)
