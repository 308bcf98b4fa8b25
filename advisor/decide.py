"""The recommendation: the rung lowest on the ladder that is not clearly beaten, and why no other rung ships.

The policy (docs/decision.md):
(a) drop rungs that break a hard constraint of the task;
(b) find the best remaining rung on the primary metric;
(c) the contenders are the rungs not clearly worse than the best: clearly worse means the paired
    interval of the difference lies below zero *and* the gap exceeds the tolerance;
(d) among them ship, by `decision.prefer`, the lowest on the ladder (prompt, demonstrations, retrieval,
    adapter, full weights; cheaper first within a step), the lowest total cost, or the lowest p95
    latency (advisor/tie_break.py);
(e) give each other rung its reason, rendered from claims about the stored numbers (advisor/claims.py);
    show what each close call costs a month (advisor/close_calls.py); fold in what the task declares
    about itself and what the data audit found; say when the evidence is too thin to tell rungs apart,
    and how many more test examples would settle it (advisor/settle.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from advisor.assessment import Assessment, Claim, Recommendation, RungResult
from advisor.claims import (
    NOISE,
    cost_claim,
    ladder_claim,
    latency_claim,
    metric_value,
    quality_claim,
    say,
    total_cost_claim,
)
from advisor.close_calls import close_call
from advisor.compare import Gap, compare_pair
from advisor.majority import majority_baseline
from advisor.settle import examples_to_settle
from advisor.task import ConstraintsSection, DecisionSection, FactsSection
from advisor.tie_break import pick, preferred_value
from advisor.training_notes import training_warnings
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.metrics.task_metrics import BINARY_METRICS
from harness.rungs import LADDER_STEPS


@dataclass(frozen=True)
class DataFacts:
    """What the data says about itself: size, the smallest class, and the audit's findings (codes)."""

    n_train: int
    smallest_class: int | None = None
    audit_codes: tuple[str, ...] = ()
    quality_cap: float | None = None  # conflicting labels bound the reachable accuracy


def decide(
    assessment: Assessment,
    constraints: ConstraintsSection,
    facts: FactsSection,
    policy: DecisionSection,
    data: DataFacts,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> Recommendation:
    """Apply the policy to an assessment's rungs."""
    rungs = assessment.rungs
    rejected: dict[str, str] = {}
    claims: dict[str, list[Claim]] = {}
    eligible = []
    for rung in rungs:
        broken = _broken_constraint(rung, constraints, assessment)
        if broken:
            rejected[rung.name] = broken
        else:
            eligible.append(rung)
    warnings = _data_warnings(rungs, facts, data)
    if not eligible:
        return Recommendation(
            rung=None,
            summary="No rung meets the task's constraints: relax a constraint or try a stronger model.",
            reasons=[f"{name}: {why}" for name, why in rejected.items()],
            rejected=rejected,
            warnings=warnings,
            confidence=measurement.confidence,
            tolerance=measurement.tolerance,
            prefer=policy.prefer,
            horizon_months=policy.horizon_months,
        )
    metric = eligible[0].primary_metric
    best = max(eligible, key=lambda r: metric_value(r, metric))
    order = sorted(eligible, key=lambda r: (r.step, _per_1k(r), rungs.index(r)))
    gaps: dict[tuple[str, str], Gap] = {}

    def gap(a: RungResult, b: RungResult) -> Gap:
        if (a.name, b.name) not in gaps:
            task = assessment.task
            gaps[a.name, b.name] = compare_pair(a, b, task.type, task.labels, metric, measurement)
        return gaps[a.name, b.name]

    def clearly_worse(a: RungResult, b: RungResult) -> bool:
        behind = metric_value(b, metric) - metric_value(a, metric)
        return gap(a, b).clearly_negative(measurement.confidence) and behind > measurement.tolerance

    beaten = _clearly_beaten_by_best([r for r in order if r is not best], best, metric, measurement, gap)
    contenders = [r for r in order if r.name not in beaten]
    chosen = pick(contenders, policy)
    for rung in order:
        if rung not in contenders:
            claims[rung.name] = [quality_claim(rung, best, metric)]
            held = f", below the Holm threshold for {len(order) - 1} comparisons" if len(order) > 2 else ""
            rejected[rung.name] = f"clearly worse than {best.name}: {gap(rung, best).describe(metric)}{held}"
    claims[chosen.name], reason = _why_chosen(chosen, best, contenders, order, metric, policy, measurement, gap)
    thin_examples: int | None = None
    undecided: list[str] = []
    for rung in contenders:
        if rung is chosen:
            continue
        said, why = _why_not(rung, chosen, metric, policy, measurement, gap(rung, chosen))
        claims[rung.name], rejected[rung.name] = said, why
        ahead = metric_value(rung, metric) - metric_value(chosen, metric)
        if ahead > measurement.tolerance and not gap(rung, chosen).clearly_positive(measurement.confidence):
            undecided.append(rung.name)
            needed = _more_examples(gap(rung, chosen), rung, chosen, metric, measurement.confidence)
            thin_examples = needed if thin_examples is None else min(thin_examples, needed or thin_examples)
    close_calls = [
        call
        for rung in order
        if rung is not chosen and not clearly_worse(rung, chosen)
        for call in [close_call(rung, chosen, gap(rung, chosen), metric)]
        if call is not None
    ]
    baseline = majority_baseline(assessment, measurement)
    for rung in eligible if baseline is not None else []:
        assert baseline is not None
        if gap(rung, baseline).clearly_positive(measurement.confidence):
            continue
        note = (
            f"does not clearly beat the majority-class baseline ({baseline.name}: {metric} "
            f"{metric_value(baseline, metric):.3f}; {gap(rung, baseline).describe(metric)})"
        )
        if rung is chosen:
            warnings.append(f"{rung.name} {note}")
        else:
            rejected[rung.name] += f"; it {note}"
    warnings += _fact_warnings(chosen, eligible, facts, metric, data)
    for rung in rungs:  # how a tuned rung was trained can explain why it lost, or qualify why it won
        notes = training_warnings(rung)
        if notes and rung.name in rejected:
            rejected[rung.name] += f"; note: {rung.name}: " + "; ".join(notes)
        elif notes and rung is chosen:
            warnings += [f"{rung.name}: {note}" for note in notes]
    evidence_thin = thin_examples is not None
    if evidence_thin:
        warnings.append(
            "The evidence is thin: some rungs are ahead by more than the tolerance but their intervals still "
            f"include no difference. Roughly {thin_examples} more test examples would settle the closest one "
            f"(at {measurement.confidence:.0%} confidence, with 80% power if the observed difference is real)."
            if thin_examples
            else "The evidence is thin: rungs differ by more than the tolerance without a clear difference."
        )
    constraint_rejected = {r.name for r in rungs if r not in eligible}
    summary, summary_claims = _summary(
        chosen, best, rungs, constraint_rejected, contenders, metric, policy, measurement, gap
    )
    claims[chosen.name] += summary_claims
    return Recommendation(
        rung=chosen.name,
        summary=summary,
        reasons=[reason],
        rejected={r.name: rejected[r.name] for r in rungs if r.name in rejected},
        best=best.name,
        warnings=warnings,
        evidence_thin=evidence_thin,
        more_examples_needed=thin_examples,
        confidence=measurement.confidence,
        tolerance=measurement.tolerance,
        prefer=policy.prefer,
        horizon_months=policy.horizon_months,
        claims={r.name: claims[r.name] for r in rungs if r.name in claims},
        close_calls=close_calls,
        undecided=undecided,
    )


def _clearly_beaten_by_best(
    others: Sequence[RungResult],
    best: RungResult,
    metric: str,
    measurement: Measurement,
    gap: Callable[[RungResult, RungResult], Gap],
) -> set[str]:
    """The rungs clearly worse than the best, with Holm's step-down over the comparisons against it.

    The best is chosen by the data, so comparing every other rung with it is several tests at once: at
    5 % each, seven truly equal rungs would see "a clearly better rung" far more than 5 % of the time
    (benchmarks/decision_sim.py measured 11-13 % at n >= 300). Holm's procedure keeps that family-wise
    rate at the confidence level: the k-th smallest p-value must fall below alpha / (m - k + 1). A rung
    is also clearly worse only when its paired interval lies below zero and it trails by more than the
    tolerance.
    """
    alpha = 1 - measurement.confidence

    def p_value(rung: RungResult) -> float:
        difference = gap(rung, best)  # McNemar's exact p for a 0/1 metric, the paired bootstrap's otherwise
        return difference.mcnemar_p if difference.mcnemar_p is not None else difference.paired.p_value

    beaten: set[str] = set()
    ranked = sorted(others, key=p_value)
    for index, rung in enumerate(ranked):
        behind = metric_value(best, metric) - metric_value(rung, metric)
        below = gap(rung, best).paired.ci_high < 0
        if not (p_value(rung) < alpha / (len(ranked) - index) and below and behind > measurement.tolerance):
            break
        beaten.add(rung.name)
    return beaten


def _per_1k(rung: RungResult) -> float:
    return rung.cost.per_1k if rung.cost and rung.cost.per_1k is not None else math.inf


def _broken_constraint(rung: RungResult, limits: ConstraintsSection, assessment: Assessment) -> str | None:
    metric = rung.primary_metric
    value = metric_value(rung, metric)
    if limits.min_quality is not None and value < limits.min_quality:
        return f"{metric} {value:.3f} is below the required {limits.min_quality:.3f}"
    p95 = rung.latency.p95_s
    if limits.max_p95_latency_s is not None and p95 is not None and p95 > limits.max_p95_latency_s:
        return f"p95 latency {p95:.3f} s exceeds the budget of {limits.max_p95_latency_s:.3f} s"
    per_1k = rung.cost.per_1k if rung.cost else None
    if limits.max_cost_per_1k is not None and per_1k is not None and per_1k > limits.max_cost_per_1k:
        return f"${per_1k:.4f} per 1k requests exceeds the budget of ${limits.max_cost_per_1k:.4f}"
    forgetting = rung.forgetting
    if (
        limits.max_forgetting is not None
        and forgetting is not None
        and forgetting.delta is not None
        and -forgetting.delta > limits.max_forgetting
    ):
        return (
            f"forgets too much: probe accuracy {forgetting.delta:+.3f} [{forgetting.ci_low:+.3f}, "
            f"{forgetting.ci_high:+.3f}] against the base model, more than the {limits.max_forgetting:.3f} allowed"
        )
    if limits.max_training_cost is not None and rung.cost is not None:
        training = rung.cost.one_off_training()
        if training is not None and training > limits.max_training_cost:
            return f"training costs ${training:.2f}, over the budget of ${limits.max_training_cost:.2f}"
    return None


def _why_chosen(
    chosen: RungResult,
    best: RungResult,
    contenders: Sequence[RungResult],
    order: Sequence[RungResult],
    metric: str,
    policy: DecisionSection,
    measurement: Measurement,
    gap: Callable[[RungResult, RungResult], Gap],
) -> tuple[list[Claim], str]:
    estimate = chosen.metrics[metric]
    price = f" at ${_per_1k(chosen):.4f} per 1k requests" if _per_1k(chosen) != math.inf else ""
    parts = [f"{chosen.name}: {metric} {estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]{price}"]
    said: list[Claim] = []
    if chosen is best:
        parts.append(f"the best rung on {metric}")
    else:
        said.append(quality_claim(chosen, best, metric))
        parts.append(
            f"not clearly worse than the best, {best.name} ({gap(chosen, best).describe(metric)}, "
            f"tolerance {measurement.tolerance:.3f} at {measurement.confidence:.0%} confidence)"
        )
    if policy.prefer == "ladder":
        below = [r for r in order if r.step < chosen.step]
        if chosen is best and below:
            said += [claim for r in below for claim in (ladder_claim(r, chosen), quality_claim(r, chosen, metric))]
            parts.append("every rung lower on the ladder is clearly worse")
        elif chosen is not best:
            position = ladder_claim(chosen, best)
            said.append(position)
            parts.append(f"and {say(position)}")
            running = cost_claim(chosen, best)
            if position.direction == "same" and running is not None:
                said.append(running)
                parts.append(f"and {say(running)}")
        return said, "; ".join(parts)
    rivals = [r for r in contenders if r is not chosen]
    lowest = min((v for r in contenders if (v := preferred_value(r, policy)) is not None), default=None)
    value = preferred_value(chosen, policy)
    what = f"total cost over {policy.horizon_months:g} months" if policy.prefer == "cost" else "p95 latency"
    if value is None or lowest is None:
        parts.append(f"its {what} is not measured, so the rung lowest on the ladder ships")
        return said, "; ".join(parts)
    amount = f"${value:,.2f}" if policy.prefer == "cost" else f"{value * 1000:.0f} ms"
    rank = "the lowest" if value == lowest else f"within {NOISE:.0%} of the lowest"
    parts.append(f"{rank} {what} ({amount}) among the {len(contenders)} rungs not clearly worse than the best")
    for rival in rivals:
        claim = _preferred_claim(chosen, rival, policy)
        if claim is not None:
            said.append(claim)
            parts.append(say(claim, horizon_months=policy.horizon_months))
    return said, "; ".join(parts)


def _why_not(
    rung: RungResult,
    chosen: RungResult,
    metric: str,
    policy: DecisionSection,
    measurement: Measurement,
    difference: Gap,
) -> tuple[list[Claim], str]:
    """Why a rung that is not clearly worse than the best was not shipped, against the chosen rung."""
    said: list[Claim] = []
    parts: list[str] = []
    if policy.prefer == "ladder":
        position = ladder_claim(rung, chosen)
        said += [position, ladder_claim(chosen, rung)]
        parts.append(say(position))
        running = cost_claim(rung, chosen)
        if position.direction == "same" and running is not None:
            said.append(running)
            parts.append(say(running))
        ships = f"so {chosen.name}, " + (
            "lower on the ladder, ships" if position.direction == "higher" else "first in the ladder's order, ships"
        )
    else:
        claim = _preferred_claim(rung, chosen, policy)
        tied = claim is None or claim.direction == "same"
        if claim is not None:
            said.append(claim)
        if tied:
            said.append(ladder_claim(chosen, rung))
        decided = f"within {NOISE:.0%}, so {chosen.name}, first in the ladder's order, ships" if tied else ""
        said_claim = say(claim, horizon_months=policy.horizon_months) if claim is not None else "not measured"
        parts.append(f"{said_claim}, {decided}" if decided else said_claim)
        ships = ""
    quality = quality_claim(rung, chosen, metric)
    said.append(quality)
    ahead = quality.value - quality.other_value
    described = difference.describe(metric)
    then = f", {ships}" if ships else ""
    if ahead > measurement.tolerance and not difference.clearly_positive(measurement.confidence):
        parts.append(f"{say(quality)} but not clearly ({described}){then}")
    elif ahead > measurement.tolerance:  # clearly ahead of the chosen rung, which is still not clearly behind the best
        behind_best = f"{chosen.name} is not clearly worse than the best rung"
        parts.append(f"{say(quality)} ({described}), but {behind_best}{then}")
    elif ahead > 0:
        parts.append(f"{say(quality)}, within the {measurement.tolerance:.3f} tolerance ({described}){then}")
    else:
        parts.append(f"{say(quality)} ({described})")
    return said, "; ".join(parts)


def _preferred_claim(rung: RungResult, other: RungResult, policy: DecisionSection) -> Claim | None:
    if policy.prefer == "cost":
        return total_cost_claim(rung, other, policy.horizon_months)
    return latency_claim(rung, other, p95=True)


def _summary(
    chosen: RungResult,
    best: RungResult,
    rungs: Sequence[RungResult],
    constraint_rejected: set[str],
    contenders: Sequence[RungResult],
    metric: str,
    policy: DecisionSection,
    measurement: Measurement,
    gap: Callable[[RungResult, RungResult], Gap],
) -> tuple[str, list[Claim]]:
    tuned = [r for r in rungs if r.tuned]
    head = "Fine-tune: " if chosen.tuned else "Ship the prompt: " if tuned else "Ship "
    if policy.prefer != "ladder":
        what = f"total cost over {policy.horizon_months:g} months" if policy.prefer == "cost" else "p95 latency"
        return (
            f"{head}{chosen.name}, the lowest {what} (ties within {NOISE:.0%} are broken by the ladder order) "
            f"among the rungs not clearly worse than the best on {metric}.",
            [],
        )
    if chosen.tuned and chosen is best:
        below = [r for r in rungs if r.step < chosen.step and r.name not in constraint_rejected]
        if not below:
            return f"{head}{chosen.name}, the best rung on {metric}.", []
        return f"{head}{chosen.name} clearly beats every rung lower on the ladder on {metric}.", [
            claim for r in below for claim in (ladder_claim(r, chosen), quality_claim(r, chosen, metric))
        ]
    if (
        not chosen.tuned
        and tuned
        and not any(gap(t, chosen).clearly_positive(measurement.confidence) for t in tuned if t in contenders)
    ):
        return f"{head}{chosen.name}. No tuned rung clearly beats it on {metric}.", []
    return (
        f"{head}{chosen.name}, the rung lowest on the ladder that is not clearly worse than the best "
        f"({best.name}) on {metric}.",
        [],
    )


def _data_warnings(rungs: Sequence[RungResult], facts: FactsSection, data: DataFacts) -> list[str]:
    warnings = []
    if {"leakage", "near_leakage"} & set(data.audit_codes):
        warnings.append(
            "Test examples also appear in the training data (leakage): every rung that sees train data is inflated."
        )
    if data.quality_cap is not None:
        warnings.append(f"Conflicting labels in the data cap the reachable accuracy at about {data.quality_cap:.3f}.")
    few = data.smallest_class is not None and data.smallest_class < facts.min_examples_per_class_for_tuning
    tuned = [r.name for r in rungs if r.tuned]
    if tuned and (few or data.n_train < 100):
        count = f"its smallest class has {data.smallest_class}" if few else f"{data.n_train} train examples"
        warnings.append(
            f"Few labelled examples ({count}): the tuned rungs ({', '.join(tuned)}) learned from so little data "
            "that their results are fragile."
        )
    return warnings


def _fact_warnings(
    chosen: RungResult, eligible: Sequence[RungResult], facts: FactsSection, metric: str, data: DataFacts
) -> list[str]:
    warnings = []
    if facts.knowledge_changes_often and chosen.tuned:
        retrieval = [r for r in eligible if LADDER_STEPS[r.step] == "retrieval"]
        close = max(retrieval, key=lambda r: metric_value(r, metric), default=None)
        where = f" ({close.name}: {metric} {metric_value(close, metric):.3f})" if close else ""
        warnings.append(
            "The task's knowledge changes often: tuned weights go stale and need retraining on every change; "
            f"prefer retrieval{where} unless the gap is worth that."
        )
    if facts.data_must_stay_in_house and chosen.cost is not None and chosen.cost.hosting == "api":
        warnings.append("The data must stay in-house: serve this rung self-hosted, not through an API.")
    return warnings


def _more_examples(difference: Gap, rung: RungResult, chosen: RungResult, metric: str, confidence: float) -> int | None:
    """Test examples to add to settle the comparison, from its paired data (advisor/settle.py)."""
    if metric in BINARY_METRICS:
        return examples_to_settle(
            difference.paired, confidence, [r.correct for r in rung.records], [r.correct for r in chosen.records]
        )
    return examples_to_settle(difference.paired, confidence)
