"""Which of the rungs not clearly worse than the best ships: `decision.prefer`.

- ladder (the default): the lowest on the ladder, the easiest to change and undo;
- cost: the lowest total cost over `decision.horizon_months` (one-off training + serving at the
  declared volume);
- latency: the lowest p95 single-request latency.

Measured $ and latency move about ±15 % between runs, so every rung within 20 % of the lowest value
counts as tied with it, and the ladder order breaks the tie: a re-measurement cannot flip the pick
over noise, and the same Assessment always gives the same pick.
"""

from __future__ import annotations

from collections.abc import Sequence

from advisor.decision.assessment import RungResult
from advisor.decision.claims import measured_direction, total_cost
from advisor.task.spec import DecisionSection


def preferred_value(rung: RungResult, policy: DecisionSection) -> float | None:
    """What `prefer` minimises for this rung (None when it was not measured or priced)."""
    if policy.prefer == "cost":
        return total_cost(rung, policy.horizon_months)
    if policy.prefer == "latency":
        return rung.latency.p95_s
    return None


def pick(contenders: Sequence[RungResult], policy: DecisionSection) -> RungResult:
    """The rung to ship among `contenders`, which come in ladder order."""
    values = [(rung, preferred_value(rung, policy)) for rung in contenders]
    known = [value for _, value in values if value is not None]
    if policy.prefer == "ladder" or not known:
        return contenders[0]
    lowest = min(known)
    return next(rung for rung, value in values if value is not None and measured_direction(value, lowest) == "same")
