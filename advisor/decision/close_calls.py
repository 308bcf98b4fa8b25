"""What a tie costs: a rung that was not chosen, is not clearly worse, and is cheaper or faster to run.

The policy can ship the rung lower on the ladder while a rival runs for less every month; the reader
should see that price. One short block per rival: $ per month at the declared volume, p50/p95
latency, the month its extra one-off cost (training, every search trial) is repaid, its forgetting.
"""

from __future__ import annotations

from advisor.decision.assessment import CloseCall, RungResult
from advisor.decision.claims import cost_claim, latency_claim, one_off, say
from harness.metrics.simultaneous import PairInterval


def close_call(rung: RungResult, chosen: RungResult, gap: PairInterval, metric: str) -> CloseCall | None:
    """The close call of `rung` against the chosen rung, if it runs cheaper or faster (gap: rung - chosen)."""
    cheaper = cost_claim(rung, chosen)
    faster = latency_claim(rung, chosen)
    claims = [c for c in (cheaper, faster) if c is not None and c.direction == "lower"]
    if not claims:
        return None
    faster_p95 = latency_claim(rung, chosen, p95=True)
    monthly = rung.cost.monthly if rung.cost else None
    chosen_monthly = chosen.cost.monthly if chosen.cost else None
    extra = one_off(rung) - one_off(chosen)
    saving = chosen_monthly - monthly if monthly is not None and chosen_monthly is not None else None
    repaid = None
    if saving is not None and saving > 0:
        repaid = max(extra, 0.0) / saving
    forgetting = rung.forgetting.delta if rung.forgetting is not None and rung.forgetting.weights_changed else None
    return CloseCall(
        rung=rung.name,
        chosen=chosen.name,
        metric=metric,
        difference=gap.difference,
        ci_low=gap.ci_low,
        ci_high=gap.ci_high,
        requests_per_month=rung.cost.requests_per_month if rung.cost else 0.0,
        monthly=monthly,
        chosen_monthly=chosen_monthly,
        p50_s=rung.latency.p50_s,
        chosen_p50_s=chosen.latency.p50_s,
        p95_s=rung.latency.p95_s,
        chosen_p95_s=chosen.latency.p95_s,
        one_off=one_off(rung),
        chosen_one_off=one_off(chosen),
        repaid_month=repaid,
        forgetting=forgetting,
        claims=[*claims, *([faster_p95] if faster_p95 is not None and faster_p95.direction == "lower" else [])],
    )


def describe_close_call(call: CloseCall) -> str:
    """One paragraph: the tie, what running the rival instead would save a month, and what it costs once."""
    parts = [
        f"{call.rung} is not clearly worse than {call.chosen} ({call.metric} {call.difference:+.3f} "
        f"[{call.ci_low:+.3f}, {call.ci_high:+.3f}])"
    ]
    parts += [f"it is {say(claim)}" for claim in call.claims]
    saving = call.monthly_saving()
    cheaper = any(claim.measure == "cost" for claim in call.claims)  # beyond measurement noise
    if cheaper and saving is not None and saving > 0:
        volume = f"{call.requests_per_month:,.0f} requests a month"
        parts.append(f"at {volume} it would save ${saving:,.2f} a month (${saving * 12:,.2f} a year)")
        extra = (call.one_off or 0.0) - (call.chosen_one_off or 0.0)
        if extra > 0 and call.repaid_month is not None:
            when = "within the first month" if call.repaid_month < 1 else f"after {call.repaid_month:.1f} months"
            parts.append(f"its extra one-off cost of ${extra:,.2f} is repaid {when}")
        elif extra <= 0:
            parts.append("it has no extra one-off cost")
    if call.forgetting is not None:
        parts.append(f"its general-skill probes moved {call.forgetting:+.3f} against the base model")
    return "; ".join(parts) + "."


PREFER_HINT = (
    "The ladder's order broke these ties (decision.prefer: ladder); set decision.prefer: cost or latency "
    "in the task file to let running cost or latency break them."
)


def close_call_lines(calls: list[CloseCall], prefer: str) -> list[str]:
    """The close-call block as lines: one per rival, and how to let cost or latency decide."""
    lines = [describe_close_call(call) for call in calls]
    return [*lines, PREFER_HINT] if lines and prefer == "ladder" else lines
