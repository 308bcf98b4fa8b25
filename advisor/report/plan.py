"""The plan (`advisor assess --plan`) as a terminal table, and the plan-versus-measured table of a real run."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from advisor.decision.assessment import Assessment
from advisor.measure.plan_store import Plan, computed_phases
from advisor.report.formatting import dollars_text


def duration(seconds: float | None) -> str:
    """2 min 05 s, 48 s, 0.3 s."""
    if seconds is None:
        return "-"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def plan_table(plan: Plan) -> Table:
    """Expected time and cost per rung, and the total."""
    rates = plan.rates
    scoring = rates.scoring_tokens_per_s
    caption = (
        f"Calibrated in {plan.calibration_s:.0f} s on this machine: "
        + (f"scoring {scoring:.0f} tok/s, " if scoring else "")
        + f"{rates.generation_s_per_token * 1000:.0f} ms per generated token"
        + "".join(f", {m} training {r:.0f} tok/s" for m, r in rates.training_tokens_per_s.items())
        + ". Nothing cached is assumed; a remote rung's time at its endpoint is not known before the run. "
        "evaluation: test answers, the latency sample and any choice among alternatives on validation; "
        "training: every trial of a search; probes: forgetting, the base model's answers once."
    )
    table = Table(title="Plan: expected time and cost per rung", caption=caption)
    for title in ("Rung", "tok in", "evaluation", "training", "probes", "total", "p50", "$/1k req", "train $"):
        table.add_column(title, justify="left" if title == "Rung" else "right")
    for rung in plan.rungs:
        evaluation = rung.choosing_s + rung.evaluation_s + rung.latency_s
        table.add_row(
            escape(rung.name),
            f"{rung.prompt_tokens:.0f}",
            duration(evaluation),
            duration(rung.training_s),
            duration(rung.probes_s),
            duration(rung.total_s) + (" + endpoint" if rung.endpoint else ""),
            "-" if rung.p50_s is None else f"{rung.p50_s * 1000:.0f} ms",
            dollars_text(rung.per_1k),
            dollars_text(rung.training_cost),
        )
    table.add_row("all rungs", "", "", "", "", duration(plan.total_s()), "", "", "")
    return table


def plan_check_table(assessment: Assessment) -> Table | None:
    """A real run's measurements against the stored plan, for the work the run computed; a rung it read from
    the store is listed as such, with no ratio (reading took no time worth comparing)."""
    if not assessment.plan_checks:
        return None
    table = Table(
        title="Plan against measurement (the estimate's error)",
        caption="Only what this run computed is compared; answers read from the store took no time.",
    )
    for title in ("Rung", "computed", "planned", "measured", "measured / planned", "planned $/1k", "measured $/1k"):
        table.add_column(title, justify="left" if title in ("Rung", "computed") else "right")
    checks = {check.rung: check for check in assessment.plan_checks}
    for rung in assessment.rungs:
        check = checks.get(rung.name)
        if check is None:
            if rung.endpoint is None:  # an endpoint's time was never planned: no row
                where = "not in the plan" if computed_phases(rung) else "from the store"
                table.add_row(escape(rung.name), where, "-", "-", "-", "-", "-")
            continue
        table.add_row(
            escape(check.rung),
            ", ".join(check.phases) or "-",
            duration(check.planned_s),
            duration(check.measured_s),
            ratio_text(check.time_ratio),
            dollars_text(check.planned_per_1k),
            dollars_text(check.measured_per_1k),
        )
    return table


def ratio_text(ratio: float | None) -> str:
    """1.35x, 0.42x; two significant digits below 0.1 (0.0031x), so a real ratio never reads 0.00x."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"
