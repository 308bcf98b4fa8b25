"""The recommendation: the rung lowest on the ladder that is not clearly beaten, and why no other rung ships.

The policy (docs/decision.md):
(a) drop rungs that break a hard constraint of the task;
(b) find the best remaining rung on the primary metric;
(c) the contenders are the rungs not clearly worse than the best: clearly worse means the paired
    interval of the difference lies below zero *and* the gap exceeds the tolerance;
(d) among them ship, by `decision.prefer`, the lowest on the ladder (prompt, demonstrations, retrieval,
    adapter, full weights; cheaper first within a step), the lowest total cost, or the lowest p95
    latency (advisor/decision/tie_break.py);
(e) give each other rung its reason, rendered from claims about the stored numbers (advisor/decision/claims.py);
    show what each close call costs a month (advisor/decision/close_calls.py); fold in what the task declares
    about itself and what the data audit found; say when the evidence is too thin to tell rungs apart,
    and how many more test examples would settle it (advisor/decision/settle.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from advisor.decision.assessment import Claim, Evidence, Recommendation, RungResult
from advisor.decision.claims import (
    NOISE,
    cost_claim,
    ladder_claim,
    latency_claim,
    metric_value,
    quality_claim,
    say,
    seed_spread,
    total_cost_claim,
)
from advisor.decision.close_calls import close_call
from advisor.decision.compare import compare_together, describe_gap
from advisor.decision.floor import against_floor, below_floor_reason, floor_checks, nothing_ships_summary
from advisor.decision.majority import majority_baseline
from advisor.decision.settle import examples_for_margin, examples_to_settle
from advisor.decision.tie_break import pick, preferred_value
from advisor.decision.training_notes import training_warnings
from advisor.task.spec import ConstraintsSection, DecisionSection, FactsSection
from harness.ladder import LADDER_STEPS
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.metrics.simultaneous import PairInterval


@dataclass(frozen=True)
class DataFacts:
    """What the data says about itself: size, the smallest class, and the audit's findings (codes)."""

    n_train: int
    smallest_class: int | None = None
    audit_codes: tuple[str, ...] = ()
    quality_cap: float | None = None  # conflicting labels bound the reachable accuracy


def decide(
    assessment: Evidence,
    constraints: ConstraintsSection,
    facts: FactsSection,
    policy: DecisionSection,
    data: DataFacts,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> Recommendation:
    """Apply the policy to the evidence's rungs (an Assessment is evidence too: its recommendation is not read)."""
    rungs = assessment.rungs
    task = assessment.task
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
    settings = dict(
        confidence=measurement.confidence,
        tolerance=measurement.tolerance,
        margin=policy.margin,
        prefer=policy.prefer,
        horizon_months=policy.horizon_months,
    )
    if not eligible:
        return Recommendation(
            rung=None,
            summary="No rung meets the task's constraints: relax a constraint or try a stronger model.",
            reasons=[f"{name}: {why}" for name, why in rejected.items()],
            rejected=rejected,
            warnings=warnings,
            **settings,  # type: ignore[arg-type]
        )
    metric = eligible[0].primary_metric
    baseline = majority_baseline(assessment, measurement)
    floor = floor_checks(eligible, baseline, task.type, task.labels, metric, measurement) if baseline else {}
    if baseline is not None:
        for rung in [r for r in eligible if floor[r.name].below]:
            rejected[rung.name] = below_floor_reason(floor[rung.name], baseline, metric)
            claims[rung.name] = [quality_claim(rung, baseline, metric)]
        eligible = [r for r in eligible if not floor[r.name].below]
        if not eligible:
            return Recommendation(
                rung=None,
                summary=nothing_ships_summary(baseline, metric, task.model),
                reasons=[f"{r.name}: {rejected[r.name]}" for r in rungs],
                rejected=rejected,
                warnings=warnings,
                floor=baseline.name,
                claims={r.name: claims[r.name] for r in rungs if r.name in claims},
                **settings,  # type: ignore[arg-type]
            )
    best = max(eligible, key=lambda r: metric_value(r, metric))
    order = sorted(eligible, key=lambda r: (r.step, _per_1k(r), rungs.index(r)))
    # the ladder's pick asks of each rung only "is a rung above it clearly better?"; the other tie-breaks
    # need every rung compared with every other
    upward = policy.prefer == "ladder"
    together = compare_together(order, task.type, task.labels, metric, measurement, upward=upward)
    gap = together.gap

    def beater(rung: RungResult) -> RungResult | None:
        """The rung that clearly beats this one by more than the tolerance (the best first), if any."""
        rivals = order[order.index(rung) + 1 :] if upward else [r for r in order if r is not rung]
        ranked = sorted(rivals, key=lambda r: (-metric_value(r, metric), r is not best))
        return next(
            (
                other
                for other in ranked
                if gap(other, rung).clearly_positive()
                and metric_value(other, metric) - metric_value(rung, metric) > measurement.tolerance
            ),
            None,
        )

    beaten = {rung.name: by for rung in order if (by := beater(rung)) is not None}
    contenders = [r for r in order if r.name not in beaten]
    chosen = pick(contenders, policy)
    for rung in order:
        if rung.name in beaten:
            by = beaten[rung.name]
            claims[rung.name] = [quality_claim(rung, by, metric)]
            family = f", simultaneous over {len(order)} rungs" if len(order) > 2 else ""
            rejected[rung.name] = f"clearly worse than {by.name}: {describe_gap(gap(rung, by), metric)}{family}"
    claims[chosen.name], reason = _why_chosen(chosen, best, contenders, order, metric, policy, measurement, gap)
    thin_examples: int | None = None
    undecided: list[str] = []
    underpowered: list[str] = []
    for rung in contenders:
        if rung is chosen:
            continue
        said, why = _why_not(rung, chosen, metric, policy, measurement, gap(rung, chosen))
        claims[rung.name], rejected[rung.name] = said, why
        if cannot_see(gap(rung, chosen), policy.margin):
            underpowered.append(rung.name)
        ahead = metric_value(rung, metric) - metric_value(chosen, metric)
        if ahead > measurement.tolerance:
            undecided.append(rung.name)
            needed = examples_to_settle(gap(rung, chosen))
            thin_examples = needed if thin_examples is None else min(thin_examples, needed or thin_examples)
    close_calls = [
        call
        for rung in order
        if rung is not chosen and rung in contenders
        for call in [close_call(rung, chosen, gap(rung, chosen), metric)]
        if call is not None
    ]
    for rung in eligible if baseline is not None else []:
        if baseline is None or floor[rung.name].clearly_above():
            continue
        note = f"does not clearly beat {against_floor(floor[rung.name], baseline, metric)}"
        if rung is chosen:
            warnings.append(f"{rung.name} {note}")
        else:
            rejected[rung.name] += f"; it {note}"
    warnings += _fact_warnings(chosen, eligible, facts, metric, data)
    for rung in rungs:  # a close call's tuned rung, retrained from other seeds: its values and their spread
        spread = seed_spread(rung, metric)
        if spread and rung is chosen:
            reason += f"; {spread}, decided on their mean"
        elif spread and rung.name in rejected:
            rejected[rung.name] += f"; {spread}, decided on their mean"
    for rung in rungs:  # how a tuned rung was trained can explain why it lost, or qualify why it won
        notes = training_warnings(rung)
        if notes and rung.name in rejected:
            rejected[rung.name] += f"; note: {rung.name}: " + "; ".join(notes)
        elif notes and rung is chosen:
            warnings += [f"{rung.name}: {note}" for note in notes]
    evidence_thin = thin_examples is not None or bool(underpowered)
    visible = [examples_for_margin(gap(chosen, r), policy.margin) for r in contenders if r.name in underpowered]
    for_margin = max((n for n in visible if n is not None), default=None)
    if evidence_thin:
        warnings.append(_thin_evidence(thin_examples, for_margin, policy.margin, measurement))
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
        examples_for_margin=for_margin,
        floor=baseline.name if baseline is not None else None,
        claims={r.name: claims[r.name] for r in rungs if r.name in claims},
        close_calls=close_calls,
        undecided=undecided,
        underpowered=underpowered,
        mde={r.name: gap(r, chosen).mde for r in order if r is not chosen},
        **settings,  # type: ignore[arg-type]
    )


def cannot_see(gap: PairInterval, margin: float) -> bool:
    """Too few examples to tell: the interval includes zero and a difference of `margin` would likely be missed."""
    unclear = not gap.clearly_positive() and not gap.clearly_negative()
    return unclear and not gap.mde <= margin  # an unknown MDE (NaN) cannot vouch for the test either


def _thin_evidence(settle: int | None, for_margin: int | None, margin: float, measurement: Measurement) -> str:
    parts = ["The evidence is thin:"]
    if settle is not None:
        parts.append(
            "some rungs are ahead by more than the tolerance but their intervals still include no difference; "
            f"roughly {settle} more test examples would settle the closest one (at {measurement.confidence:.0%} "
            "confidence, with 80% power if the observed difference is real)."
        )
    if for_margin is not None:
        parts.append(
            f"a difference of {margin:.3f} (decision.margin) between the contenders could not be seen with this "
            f"test set; about {for_margin} more test examples would make it visible."
        )
    if len(parts) == 1:
        parts.append("rungs differ by more than the tolerance without a clear difference.")
    return " ".join(parts)


def _per_1k(rung: RungResult) -> float:
    return rung.cost.per_1k if rung.cost and rung.cost.per_1k is not None else math.inf


def _broken_constraint(rung: RungResult, limits: ConstraintsSection, assessment: Evidence) -> str | None:
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
    gap: Callable[[RungResult, RungResult], PairInterval],
) -> tuple[list[Claim], str]:
    estimate = chosen.metrics[metric]
    price = f" at ${_per_1k(chosen):.4f} per 1k requests" if _per_1k(chosen) != math.inf else ""
    parts = [f"{chosen.name}: {metric} {estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]{price}"]
    said: list[Claim] = []
    if chosen is best:
        parts.append(f"the best rung on {metric}")
    else:
        said.append(quality_claim(chosen, best, metric))
        against = f"{best.name} ({describe_gap(gap(chosen, best), metric)}, tolerance {measurement.tolerance:.3f})"
        if gap(chosen, best).clearly_negative():  # a real gap, but within the tolerance
            parts.append(f"behind the best, {against}, by no more than the tolerance")
        elif cannot_see(gap(chosen, best), policy.margin):
            parts.append(
                f"underpowered against the best, {against}: a difference under {gap(chosen, best).mde:.3f} could "
                f"not be seen with {gap(chosen, best).n} examples"
            )
        else:
            parts.append(f"not clearly worse than the best, {against}")
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
    difference: PairInterval,
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
    described = describe_gap(difference, metric)
    then = f", {ships}" if ships else ""
    unseen = f"a difference under {difference.mde:.3f} could not be seen with {difference.n} examples"
    if ahead > measurement.tolerance and cannot_see(difference, policy.margin):
        parts.append(f"{say(quality)}, underpowered: {unseen} ({described}){then}")
    elif ahead > measurement.tolerance and not difference.clearly_positive():
        parts.append(f"{say(quality)} but not clearly ({described}){then}")
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
    gap: Callable[[RungResult, RungResult], PairInterval],
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
    if not chosen.tuned and tuned and not any(gap(t, chosen).clearly_positive() for t in tuned if t in contenders):
        rivals = [t for t in tuned if t in contenders]
        unseen = [gap(t, chosen).mde for t in rivals if cannot_see(gap(t, chosen), policy.margin)]
        if unseen:
            smallest = min(unseen)
            size = f"{smallest:.3f}" if smallest == smallest else "any size"
            return (
                f"{head}{chosen.name}. No tuned rung clearly beats it on {metric}, but the test set is too small "
                f"to tell: a difference under {size} could not be seen.",
                [],
            )
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
