"""The recommendation: the cheapest rung that is not clearly beaten, and why every other rung was not chosen.

The policy (docs/decision.md):
(a) drop rungs that break a hard constraint of the task;
(b) find the best remaining rung on the primary metric;
(c) walk the ladder upwards (prompt, demonstrations, retrieval, adapter, full weights; cheaper first
    within a step) and ship the first rung that is not clearly worse than the best: clearly worse means
    the paired interval of the difference lies below zero *and* the gap exceeds the tolerance;
(d) give each other rung its reason, with numbers; fold in what the task declares about itself and what
    the data audit found; say when the evidence is too thin to tell rungs apart, and roughly how many
    more test examples would settle it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from advisor.assessment import Assessment, Recommendation, RungResult
from advisor.compare import Gap, compare_pair
from advisor.task import ConstraintsSection, DecisionSection, FactsSection
from advisor.training_notes import training_warnings
from harness.comparison import PairedDifference
from harness.rungs import LADDER_STEPS

TUNED_STEP = 3


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
    *,
    seed: int = 0,
    resamples: int = 2000,
) -> Recommendation:
    """Apply the policy to an assessment's rungs."""
    rungs = assessment.rungs
    rejected: dict[str, str] = {}
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
            confidence=policy.confidence,
            tolerance=policy.tolerance,
        )
    metric = eligible[0].primary_metric
    best = max(eligible, key=lambda r: _value(r, metric))
    order = sorted(eligible, key=lambda r: (r.step, _per_1k(r), rungs.index(r)))

    def gap(a: RungResult, b: RungResult) -> Gap:
        task = assessment.task
        return compare_pair(
            a, b, task.type, task.labels, metric, confidence=policy.confidence, seed=seed, resamples=resamples
        )

    chosen = best
    for candidate in order:
        if candidate is best:
            break
        difference = gap(candidate, best)
        behind = _value(best, metric) - _value(candidate, metric)
        if difference.clearly_negative(policy.confidence) and behind > policy.tolerance:
            rejected[candidate.name] = f"clearly worse than {best.name}: {difference.describe(metric)}"
            continue
        chosen = candidate
        break
    reasons = [_why_chosen(chosen, best, metric, policy, gap)]
    thin_examples: int | None = None
    for rung in order:
        if rung is chosen or rung.name in rejected:
            continue
        difference = gap(rung, chosen)
        ahead = _value(rung, metric) - _value(chosen, metric)
        step_up = f"a higher step ({LADDER_STEPS[rung.step]})" if rung.step > chosen.step else "costlier"
        if ahead > policy.tolerance and not difference.clearly_positive(policy.confidence):
            needed = _more_examples(difference.paired)
            thin_examples = needed if thin_examples is None else min(thin_examples, needed or thin_examples)
            rejected[rung.name] = (
                f"{step_up}; ahead of {chosen.name} by {ahead:.3f} but not clearly "
                f"({difference.describe(metric)}), so the cheaper rung ships"
            )
        elif ahead > policy.tolerance:  # clearly ahead of the chosen rung, which is still not clearly behind the best
            rejected[rung.name] = (
                f"{step_up}; ahead of {chosen.name} ({difference.describe(metric)}), but {chosen.name} is not "
                "clearly worse than the best rung, and the ladder ships the first such rung"
            )
        elif ahead > 0:
            rejected[rung.name] = (
                f"{step_up}; ahead of {chosen.name} by only {ahead:.3f}, within the {policy.tolerance:.3f} tolerance "
                f"({difference.describe(metric)})"
            )
        else:
            rejected[rung.name] = f"{step_up}; behind {chosen.name} ({difference.describe(metric)})"
    warnings += _fact_warnings(chosen, eligible, facts, metric, data)
    for rung in rungs:  # how a tuned rung was trained can explain why it lost, or qualify why it won
        notes = training_warnings(rung)
        if notes and rung.name in rejected:
            rejected[rung.name] += f"; note: {rung.name} " + "; ".join(notes)
        elif notes and rung is chosen:
            warnings += [f"{rung.name} {note}" for note in notes]
    evidence_thin = thin_examples is not None
    if evidence_thin:
        warnings.append(
            "The evidence is thin: some rungs are ahead by more than the tolerance but their intervals still "
            f"include no difference. Roughly {thin_examples} more test examples would settle the closest one."
            if thin_examples
            else "The evidence is thin: rungs differ by more than the tolerance without a clear difference."
        )
    return Recommendation(
        rung=chosen.name,
        summary=_summary(chosen, best, rungs, metric),
        reasons=reasons,
        rejected={r.name: rejected[r.name] for r in rungs if r.name in rejected},
        best=best.name,
        warnings=warnings,
        evidence_thin=evidence_thin,
        more_examples_needed=thin_examples,
        confidence=policy.confidence,
        tolerance=policy.tolerance,
    )


def _value(rung: RungResult, metric: str) -> float:
    estimate = rung.metrics.get(metric)
    return estimate.value if estimate is not None and estimate.value == estimate.value else float("-inf")


def _per_1k(rung: RungResult) -> float:
    return rung.cost.per_1k if rung.cost and rung.cost.per_1k is not None else math.inf


def _broken_constraint(rung: RungResult, limits: ConstraintsSection, assessment: Assessment) -> str | None:
    metric = rung.primary_metric
    value = _value(rung, metric)
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
    metric: str,
    policy: DecisionSection,
    gap: Callable[[RungResult, RungResult], Gap],
) -> str:
    estimate = chosen.metrics[metric]
    cost = f" at ${_per_1k(chosen):.4f} per 1k requests" if _per_1k(chosen) != math.inf else ""
    head = f"{chosen.name}: {metric} {estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]{cost}"
    if chosen is best:
        return f"{head}; the best rung, and every cheaper rung is clearly worse"
    return (
        f"{head}; not clearly worse than the best, {best.name} ({gap(chosen, best).describe(metric)}, "
        f"tolerance {policy.tolerance:.3f} at {policy.confidence:.0%} confidence), and lower on the ladder"
    )


def _summary(chosen: RungResult, best: RungResult, rungs: Sequence[RungResult], metric: str) -> str:
    tuned = [r for r in rungs if r.step >= TUNED_STEP]
    if chosen.step < TUNED_STEP and tuned:
        return f"Ship the prompt: {chosen.name}. No tuned rung clearly beats it on {metric}."
    if chosen.step < TUNED_STEP:
        return f"Ship {chosen.name}: the cheapest rung that is not clearly beaten on {metric}."
    return f"Fine-tune: {chosen.name} clearly beats every cheaper rung on {metric}."


def _data_warnings(rungs: Sequence[RungResult], facts: FactsSection, data: DataFacts) -> list[str]:
    warnings = []
    if "leakage" in " ".join(data.audit_codes):
        warnings.append(
            "Test examples also appear in the training data (leakage): every rung that sees train data is inflated."
        )
    if data.quality_cap is not None:
        warnings.append(f"Conflicting labels in the data cap the reachable accuracy at about {data.quality_cap:.3f}.")
    few = data.smallest_class is not None and data.smallest_class < facts.min_examples_per_class_for_tuning
    tuned = [r.name for r in rungs if r.step >= TUNED_STEP]
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
    if facts.knowledge_changes_often and chosen.step >= TUNED_STEP:
        retrieval = [r for r in eligible if r.step == 2]
        close = max(retrieval, key=lambda r: _value(r, metric), default=None)
        where = f" ({close.name}: {metric} {_value(close, metric):.3f})" if close else ""
        warnings.append(
            "The task's knowledge changes often: tuned weights go stale and need retraining on every change; "
            f"prefer retrieval{where} unless the gap is worth that."
        )
    if facts.data_must_stay_in_house and chosen.cost is not None and chosen.cost.hosting == "api":
        warnings.append("The data must stay in-house: serve this rung self-hosted, not through an API.")
    return warnings


def _more_examples(paired: PairedDifference) -> int | None:
    """Test examples to add so an interval of this width would exclude zero at the observed difference.

    The half-width shrinks with the square root of n, so n' = n x (half-width / |difference|)^2.
    """
    half = (paired.ci_high - paired.ci_low) / 2
    if paired.difference == 0 or half <= 0:
        return None
    needed = math.ceil(paired.n * (half / abs(paired.difference)) ** 2)
    return max(needed - paired.n, 1)
