"""Comparisons as data, and the only words the recommendation uses for them.

A reason never says "cheaper" or "faster" on its own: it renders a Claim, built here from the two
rungs' stored numbers, and the Claim is kept beside the reason in the Recommendation. So every
comparative word can be checked against the table it sits under (tests/advisor/decision/test_claims.py does).

Measured $ and latency move about ±15 % between runs of the same thing, so within NOISE of each
other they are "about the same": a reason never ranks two rungs on a difference a re-run could flip.
Quality is compared exactly; whether a quality gap is clear is the paired test's job, said in words
beside the claim.
"""

from __future__ import annotations

from advisor.decision.assessment import Claim, Direction, RungResult
from harness.ladder import LADDER_STEPS

NOISE = 0.2  # measured costs and latencies within 20 % of each other count as the same


def measured_direction(value: float, other: float) -> Direction:
    """Lower, higher or the same, where the same means within NOISE of each other (relative)."""
    low, high = sorted((value, other))
    if high == low or (low > 0 and high <= low * (1 + NOISE)):
        return "same"
    return "lower" if value < other else "higher"


def exact_direction(value: float, other: float) -> Direction:
    """Lower, higher or the same, exactly."""
    return "same" if value == other else "lower" if value < other else "higher"


def quality_claim(rung: RungResult, other: RungResult, metric: str) -> Claim:
    """rung's primary metric against other's."""
    value, reference = metric_value(rung, metric), metric_value(other, metric)
    return Claim(
        rung=rung.name,
        other=other.name,
        measure="quality",
        direction=exact_direction(value, reference),
        value=value,
        other_value=reference,
    )


def ladder_claim(rung: RungResult, other: RungResult) -> Claim:
    """rung's step on the ladder against other's."""
    return Claim(
        rung=rung.name,
        other=other.name,
        measure="ladder",
        direction=exact_direction(rung.step, other.step),
        value=rung.step,
        other_value=other.step,
    )


def cost_claim(rung: RungResult, other: RungResult) -> Claim | None:
    """$ per 1k requests, when both are priced."""
    value, reference = per_1k(rung), per_1k(other)
    if value is None or reference is None:
        return None
    return Claim(
        rung=rung.name,
        other=other.name,
        measure="cost",
        direction=measured_direction(value, reference),
        value=value,
        other_value=reference,
    )


def latency_claim(rung: RungResult, other: RungResult, *, p95: bool = False) -> Claim | None:
    """Single-request latency (p50, or p95), when both were sampled."""
    pick = (lambda r: r.latency.p95_s) if p95 else (lambda r: r.latency.p50_s)
    value, reference = pick(rung), pick(other)
    if value is None or reference is None:
        return None
    return Claim(
        rung=rung.name,
        other=other.name,
        measure="p95_latency" if p95 else "latency",
        direction=measured_direction(value, reference),
        value=value,
        other_value=reference,
    )


def total_cost_claim(rung: RungResult, other: RungResult, horizon_months: float) -> Claim | None:
    """One-off cost plus serving over the horizon, when both are priced."""
    value, reference = total_cost(rung, horizon_months), total_cost(other, horizon_months)
    if value is None or reference is None:
        return None
    return Claim(
        rung=rung.name,
        other=other.name,
        measure="total_cost",
        direction=measured_direction(value, reference),
        value=value,
        other_value=reference,
    )


def say(claim: Claim, *, horizon_months: float = 12.0) -> str:
    """The claim in words, with its numbers; the subject (claim.rung) is left to the sentence around it."""
    other, value, reference, direction = claim.other, claim.value, claim.other_value, claim.direction
    if claim.measure == "quality":
        gap = abs(value - reference)
        return {
            "higher": f"ahead of {other} by {gap:.3f}",
            "lower": f"behind {other} by {gap:.3f}",
            "same": f"level with {other}",
        }[direction]
    if claim.measure == "ladder":
        if direction == "lower":
            return f"lower on the ladder than {other} (easier to change and undo)"
        if direction == "higher":
            steps = f"{LADDER_STEPS[int(value)]} against {LADDER_STEPS[int(reference)]}"
            return f"higher on the ladder than {other} ({steps})"
        return f"on the same step of the ladder as {other}"
    numbers = _numbers(claim, horizon_months)
    words = {
        "cost": ("cheaper to run than", "costlier to run than", "about as costly to run as"),
        "latency": ("faster than", "slower than", "about as fast as"),
        "p95_latency": ("faster at p95 than", "slower at p95 than", "about as fast at p95 as"),
        "total_cost": (
            f"cheaper over {horizon_months:g} months than",
            f"costlier over {horizon_months:g} months than",
            f"about as costly over {horizon_months:g} months as",
        ),
    }[claim.measure]
    phrase = {"lower": words[0], "higher": words[1], "same": words[2]}[direction]
    return f"{phrase} {other} ({numbers})"


def _numbers(claim: Claim, horizon_months: float) -> str:
    if claim.measure == "cost":
        return f"${claim.value:.4f} against ${claim.other_value:.4f} per 1k requests"
    if claim.measure in ("latency", "p95_latency"):
        which = "p95" if claim.measure == "p95_latency" else "p50"
        return f"{which} {claim.value * 1000:.0f} ms against {claim.other_value * 1000:.0f} ms"
    return f"${claim.value:,.2f} against ${claim.other_value:,.2f}, one-off + {horizon_months:g} months of serving"


def metric_value(rung: RungResult, metric: str) -> float:
    """The rung's value on the metric, the mean over its training seeds when it has several (minus infinity when
    it has none)."""
    values = seed_values(rung, metric)
    return sum(values) / len(values) if values else float("-inf")


def seed_values(rung: RungResult, metric: str) -> list[float]:
    """The metric of each training seed: the rung's own run first, then its retrained seeds (decision.seeds)."""
    estimate = rung.metrics.get(metric)
    if estimate is None or estimate.value != estimate.value:
        return []
    return [estimate.value, *(run.metrics[metric] for run in rung.seed_runs if metric in run.metrics)]


def seed_spread(rung: RungResult, metric: str) -> str:
    """The seeds' values, mean and spread ("3 training seeds: 0.774, 0.750, 0.790 (mean 0.771, sd 0.020)"), or ""."""
    values = seed_values(rung, metric)
    if len(values) < 2:
        return ""
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    listed = ", ".join(f"{v:.3f}" for v in values)
    return f"{len(values)} training seeds: {listed} (mean {mean:.3f}, sd {sd:.3f})"


def per_1k(rung: RungResult) -> float | None:
    """$ per 1k requests as the task's hosting serves it, or None when unpriced."""
    return rung.cost.per_1k if rung.cost is not None else None


def one_off(rung: RungResult) -> float:
    """What the rung costs once before it serves: training (every search trial), or nothing for a prompt."""
    training = rung.cost.one_off_training() if rung.cost is not None else None
    return training or 0.0


def total_cost(rung: RungResult, horizon_months: float) -> float | None:
    """One-off cost plus serving at the declared volume for the horizon; None when serving is unpriced."""
    if rung.cost is None or rung.cost.monthly is None:
        return None
    return one_off(rung) + rung.cost.monthly * horizon_months
