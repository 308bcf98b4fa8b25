"""Every comparative word in a recommendation is backed by a claim, and every claim by the table's numbers.

Generated assessments: random quality (correlated answers, so some comparisons are close), steps,
$ per request, training cost and latencies, under each tie-break. The words are those a reader takes
as a comparison; negated forms ("not clearly worse") are judged by the paired test shown beside them.
"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.decision.assessment import Assessment, Claim, CostSummary, Recommendation, RungResult
from advisor.decision.claims import NOISE
from advisor.decision.close_calls import describe_close_call
from advisor.decision.decide import DataFacts, decide
from advisor.decision.majority import majority_baseline
from advisor.task.spec import ConstraintsSection, DecisionSection, FactsSection
from harness.metrics.measurement import Measurement
from tests.advisor.decision.test_decide import assessment, rung

# phrase -> (measure(s), direction of the claim that must stand behind it)
WORDS: list[tuple[str, tuple[str, ...], str]] = [
    (r"\bahead of\b", ("quality",), "higher"),
    (r"\bbehind\b", ("quality",), "lower"),
    (r"(?<!not )\bclearly worse\b", ("quality",), "lower"),
    (r"(?<!No tuned rung )\bclearly beats\b", ("quality",), "lower"),  # the others, against the subject
    (r"\blevel with\b", ("quality",), "same"),
    (r"\blower on the ladder\b", ("ladder",), "lower"),
    (r"\bhigher on the ladder\b", ("ladder",), "higher"),
    (r"\bsame step\b", ("ladder",), "same"),
    (r"\bcheaper\b(?! over)", ("cost",), "lower"),
    (r"\bcostlier\b(?! over)", ("cost",), "higher"),
    (r"\bcheaper over\b", ("total_cost",), "lower"),
    (r"\bcostlier over\b", ("total_cost",), "higher"),
    (r"\bfaster than\b", ("latency",), "lower"),
    (r"\bslower than\b", ("latency",), "higher"),
    (r"\bfaster at p95\b", ("p95_latency",), "lower"),
    (r"\bslower at p95\b", ("p95_latency",), "higher"),
    (r"\bwould save\b", ("cost",), "lower"),
]
COMPARATIVE = re.compile(r"\b(cheaper|costlier|faster|slower|ahead|behind|beats|more expensive|less expensive)\b")


def _number(result: RungResult, measure: str, horizon: float) -> float:
    if measure == "quality":
        return result.metrics[result.primary_metric].value
    if measure == "ladder":
        return result.step
    assert result.cost is not None and result.cost.per_1k is not None
    if measure == "cost":
        return result.cost.per_1k
    if measure == "latency":
        assert result.latency.p50_s is not None
        return result.latency.p50_s
    if measure == "p95_latency":
        assert result.latency.p95_s is not None
        return result.latency.p95_s
    assert result.cost.monthly is not None
    return (result.cost.training or 0.0) + result.cost.monthly * horizon


def check_claim(claim: Claim, rungs: dict[str, RungResult], horizon: float) -> None:
    value = _number(rungs[claim.rung], claim.measure, horizon)
    other = _number(rungs[claim.other], claim.measure, horizon)
    assert (claim.value, claim.other_value) == (value, other), claim
    exact = claim.measure in ("quality", "ladder")
    low, high = sorted((value, other))
    same = value == other if exact else high == low or (low > 0 and high <= low * (1 + NOISE))
    expected = "same" if same else "lower" if value < other else "higher"
    assert claim.direction == expected, claim


def check_words(text: str, claims: list[Claim]) -> None:
    covered = 0
    for pattern, measures, direction in WORDS:
        for _ in re.finditer(pattern, text):
            covered += 1
            assert any(c.measure in measures and c.direction == direction for c in claims), (pattern, text, claims)
    loose = len(COMPARATIVE.findall(text))
    negated = len(re.findall(r"No tuned rung clearly beats", text))
    assert loose - negated <= covered, f"a comparative word without a claim: {text}"


INTERVAL = re.compile(r"\[([-+]?\d\.\d+), ([-+]?\d\.\d+)\]")


def check_intervals(text: str) -> None:
    """A clause that says "not clearly" (or "underpowered") never stands beside an interval excluding zero;
    one that says "clearly worse" stands beside an interval below zero."""
    for clause in text.split("; "):
        intervals = [(float(low), float(high)) for low, high in INTERVAL.findall(clause)]
        if "not clearly" in clause or "underpowered" in clause:
            assert all(low <= 0 <= high for low, high in intervals), clause
        elif re.search(r"(?<!not )\bclearly worse than\b", clause):
            assert intervals and all(high < 0 for _, high in intervals[:1]), clause


def check_floor(advice: Recommendation, built: Assessment) -> None:
    """No rung at or below the majority-class answer ships; when none is above it, nothing ships."""
    if built.task.majority_label is None:
        return
    share = np.mean([r.target == built.task.majority_label for r in built.rungs[0].records])
    above = [r for r in built.rungs if r.metrics["accuracy"].value > share]
    if advice.rung is None:
        assert not above and advice.summary.startswith("Nothing ships: no rung beats always answering 'a'")
        return
    assert advice.rung in {r.name for r in above}
    for result in built.rungs:
        if result not in above:
            assert "always answering 'a'" in advice.rejected[result.name], advice.rejected[result.name]


def check(advice: Recommendation, built: Assessment) -> None:
    baseline = majority_baseline(built)
    rungs = {r.name: r for r in [*built.rungs, *([baseline] if baseline else [])]}
    horizon = advice.horizon_months
    for said in advice.claims.values():
        for claim in said:
            check_claim(claim, rungs, horizon)
    for text in [advice.summary, *advice.reasons, *advice.rejected.values(), *advice.warnings]:
        check_intervals(text)
    check_floor(advice, built)
    if advice.rung is None:
        return
    chosen_claims = advice.claims.get(advice.rung, [])
    check_words(advice.summary, chosen_claims)
    check_words(advice.reasons[0], chosen_claims)
    for name, why in advice.rejected.items():
        check_words(why.split("; note:")[0], advice.claims.get(name, []))
    for call in advice.close_calls:
        for claim in call.claims:
            check_claim(claim, rungs, horizon)
        check_words(describe_close_call(call), call.claims)


def generated(seed: int, count: int, n: int) -> Assessment:
    """Rungs answering the same targets (a share of them 'a', the majority label), some below always-'a'."""
    rng = np.random.default_rng(seed)
    targets = np.where(rng.random(n) < rng.uniform(0.5, 0.8), "a", "b")
    base = rng.random(n) < rng.uniform(0.3, 0.9)
    results = []
    steps = sorted(rng.integers(0, 5, size=count))
    for i, step in enumerate(steps):
        flips = rng.random(n) < rng.uniform(0.0, 0.4)
        correct = np.where(flips, rng.random(n) < rng.uniform(0.2, 0.95), base)
        per_1k = float(rng.choice([0.003, 0.004, 0.01, 0.015, 0.05]))
        p95 = float(rng.choice([0.1, 0.11, 0.3, 0.9]))
        made = rung(f"r{i}", int(step), correct, per_1k=per_1k, p95=p95)
        assert made.cost is not None
        training = float(rng.choice([0.0, 0.02, 5.0])) if step >= 3 else None
        update = {"training": training, "monthly": per_1k * 100}
        for record, target in zip(made.records, targets, strict=True):
            record.target = str(target)
            record.prediction = record.output = record.target if record.correct else ("b" if target == "a" else "a")
        results.append(made.model_copy(update={"cost": CostSummary(**{**made.cost.model_dump(), **update})}))
    built = assessment(*results)
    built.task.majority_label = "a"
    return built


@settings(max_examples=30, deadline=None, derandomize=True)  # 60 took 4.4 s; 30 still cover every prefer/tolerance
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(2, 6),
    n=st.sampled_from([60, 150, 300]),
    prefer=st.sampled_from(["ladder", "cost", "latency"]),
    tolerance=st.sampled_from([0.0, 0.01, 0.05]),
)
def test_every_comparative_word_stands_on_a_claim_that_the_numbers_agree_with(
    seed: int, count: int, n: int, prefer: str, tolerance: float
) -> None:
    built = generated(seed, count, n)
    policy = DecisionSection(prefer=prefer)  # type: ignore[arg-type]
    advice = decide(
        built,
        ConstraintsSection(),
        FactsSection(),
        policy,
        DataFacts(n_train=500),
        Measurement(resamples=200, tolerance=tolerance),
    )
    check(advice, built)
    again = decide(
        built,
        ConstraintsSection(),
        FactsSection(),
        policy,
        DataFacts(n_train=500),
        Measurement(resamples=200, tolerance=tolerance),
    )
    assert again == advice  # the same assessment never flips its pick


def test_a_false_claim_is_caught() -> None:
    """The checker itself can fail: a claim that says 'cheaper' against the numbers."""
    built = generated(3, 3, 100)
    rungs = {r.name: r for r in built.rungs}
    first, second = built.rungs[0], built.rungs[1]
    assert first.cost is not None and second.cost is not None and first.cost.per_1k is not None
    wrong = Claim(
        rung=first.name,
        other=second.name,
        measure="cost",
        direction="lower",
        value=first.cost.per_1k,
        other_value=first.cost.per_1k * 0.5,
    )
    try:
        check_claim(wrong, rungs, 12.0)
    except AssertionError:
        pass
    else:
        raise AssertionError("a wrong claim passed the check")
    try:
        check_words("r1 is cheaper to run than r0", [])
    except AssertionError:
        return
    raise AssertionError("a comparative word without a claim passed the check")
