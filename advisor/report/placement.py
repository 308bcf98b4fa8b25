"""Where each rung ran and what it costs there: local and remote rungs side by side, and how each was scored."""

from __future__ import annotations

from advisor.decision.assessment import Assessment, RungResult
from advisor.decision.compare import scoring_family, scoring_text
from advisor.report.formatting import dollars_text

COST_HEADERS = ("Rung", "Runs on", "Scoring", "$/1k req", "$/month", "one-off training", "priced as")


def runs_anywhere_else(assessment: Assessment) -> bool:
    """Some rung ran against an endpoint or on a model other than the task's."""
    return any(r.endpoint is not None or r.model is not None for r in assessment.rungs)


def runs_on(rung: RungResult) -> str:
    """`local`, `local (<model>)` or `endpoint <name> (<model>)`, with `hosted` when the host is not in-house."""
    endpoint = rung.endpoint
    if endpoint is None:
        return "local" if rung.model is None else f"local ({rung.model})"
    where = "in-house" if endpoint.in_house else "hosted"
    return f"endpoint {endpoint.name} ({endpoint.model}, {where})"


def cost_cells(assessment: Assessment) -> list[list[str]]:
    """One row per rung: where it runs, how it was scored, serving $ and one-off $, and what the $ assume."""
    rows = []
    for rung in assessment.rungs:
        cost = rung.cost
        basis = ""
        if cost is not None:
            basis = cost.assumptions.get("endpoint", "")
            if not basis:
                hosted = cost.hosting == "api"
                basis = cost.assumptions.get("api_model" if hosted else "serving_hardware", "")
                basis = f"{'API' if hosted else 'self-hosted'}: {basis}"
            tuning = cost.assumptions.get("hosted_fine_tuning") if rung.endpoint else ""
            basis += f"; hosted fine-tune: {tuning}" if tuning else ""
        rows.append(
            [
                rung.name,
                runs_on(rung),
                scoring_text(rung.scoring) if rung.scoring else "-",
                dollars_text(cost.per_1k if cost else None),
                dollars_text(cost.monthly if cost else None),
                dollars_text(cost.one_off_training() if cost else None),
                basis,
            ]
        )
    return rows


def scoring_line(assessment: Assessment) -> str | None:
    """A caveat when rungs were scored in different ways (likelihoods against parsed answers, say)."""
    groups: dict[str, list[str]] = {}
    for rung in assessment.rungs:
        if rung.scoring:
            groups.setdefault(scoring_family(rung.scoring), []).append(rung.name)
    if len(groups) < 2:
        return None
    parts = [f"{', '.join(names)} by {scoring_text(family)}" for family, names in groups.items()]
    return (
        "The rungs' answers were read in different ways: " + "; ".join(parts) + ". A difference between rungs "
        "read differently measures the reading as well as the rung."
    )
