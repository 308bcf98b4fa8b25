"""Training-seed spread on close calls: a tuned rung near the shipped one is retrained from other seeds.

A tuned rung's test interval covers the sampling of test examples only; a second training seed can move
a 124-example accuracy by several points. When the recommendation would ship a rung whose difference
from a tuned contender is within the comparison's minimum detectable difference (or would ship a tuned
rung within the MDE of its closest contender), that tuned rung's chosen configuration is trained again,
by the same procedure, from `decision.seeds - 1` more seeds. The seeds answer the same test examples;
the decision then uses the mean over the seeds, with an interval that adds the seeds' own variance to the
examples' (advisor/decision/compare.py). Trained artifacts and answers are stored: a re-run computes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from advisor.decision.assessment import Recommendation, RungResult, SeedRun
from advisor.decision.claims import metric_value
from advisor.task.spec import DecisionSection

Retrain = Callable[[RungResult, int], SeedRun | None]  # the rung's chosen configuration from this seed
# A comparison that cannot see a difference under this is decided by the test set's size: seeds move a
# metric by a few points, which would widen its interval by a few percent and change no verdict.
SEEDS_MATTER_BELOW_MDE = 0.3


def close_call_rungs(advice: Recommendation, results: Sequence[RungResult], limit: int) -> list[RungResult]:
    """The tuned rungs in the closest calls with the shipped rung: within the MDE of it, closest first."""
    if advice.rung is None:
        return []
    by_name = {r.name: r for r in results}
    chosen = by_name[advice.rung]
    metric = chosen.primary_metric

    def closeness(rung: RungResult) -> float:
        """|difference| / MDE against the chosen rung (below 1: within the MDE)."""
        mde = advice.mde.get(rung.name)
        if mde is None or mde != mde or mde <= 0 or mde >= SEEDS_MATTER_BELOW_MDE:
            return float("inf")
        return abs(metric_value(rung, metric) - metric_value(chosen, metric)) / mde

    rivals = [by_name[name] for name in advice.mde if name in by_name and closeness(by_name[name]) < 1]
    picked = [r for r in rivals if r.tuned]
    if chosen.tuned and rivals:
        picked.append(chosen)  # a tuned pick with a rival inside its MDE: the pick's own seeds matter
    picked.sort(key=lambda r: 0.0 if r is chosen else closeness(r))
    return picked[:limit]


def with_seed_runs(
    results: list[RungResult],
    policy: DecisionSection,
    seed: int,
    recommend: Callable[[list[RungResult]], Recommendation],
    retrain: Retrain,
) -> list[RungResult]:
    """The results, with the close-call tuned rungs' extra training seeds attached (decision.seeds)."""
    if policy.seeds == "off" or not any(r.tuned for r in results):
        return results
    advice = recommend(results)
    chosen = close_call_rungs(advice, results, policy.seed_rungs)
    if not chosen:
        return results
    updated = []
    for result in results:
        if result in chosen:
            runs = [run for k in range(1, policy.seeds) if (run := retrain(result, seed + k)) is not None]
            result = result.model_copy(update={"seed_runs": runs})
        updated.append(result)
    return updated
