"""The report as Markdown: short enough for a pull-request comment."""

from __future__ import annotations

from advisor.decision.assessment import Assessment
from advisor.decision.calibration_notes import calibration_line
from advisor.decision.close_calls import close_call_lines
from advisor.decision.distillation import distillation_line
from advisor.decision.training_notes import rung_search, search_line, trial_cells
from advisor.report.formatting import audit_lines, cost_note, measured_on, ranking_line, table_cells
from advisor.report.placement import COST_HEADERS, cost_cells, runs_anywhere_else, scoring_line


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, no line breaks, no raw HTML."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").split())


def _searches(assessment: Assessment) -> list[str]:
    """Each searched rung's trials, folded: the sentence shows, the table opens on a click."""
    lines = []
    for rung in assessment.rungs:
        line, search = search_line(rung), rung_search(rung)
        if line is None or search is None:
            continue
        headers, rows = trial_cells(search)
        lines += [f"<details><summary>{cell(line)}</summary>", ""]
        lines.append("| " + " | ".join(cell(h) for h in headers) + " |")
        lines.append("|" + "|".join(["---"] * len(headers)) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        lines += ["", "</details>", ""]
    return lines


def _placement(assessment: Assessment) -> list[str]:
    """Where each rung runs and its $ there (when some rung ran at an endpoint), and a scoring caveat."""
    lines = []
    if runs_anywhere_else(assessment):
        lines += ["**Where each rung runs, and what it costs there**", ""]
        lines.append("| " + " | ".join(COST_HEADERS) + " |")
        lines.append("|" + "|".join(["---"] * 3 + ["---:"] * 3 + ["---"]) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in cost_cells(assessment)]
        lines.append("")
    scoring = scoring_line(assessment)
    if scoring:
        lines += [f"_{cell(scoring)}_", ""]
    return lines


def render_markdown(assessment: Assessment) -> str:
    """Recommendation, the side-by-side table, why not the others, warnings, and where it was measured."""
    task = assessment.task
    lines = [f"## Ladder: {cell(task.name)}", ""]
    advice = assessment.recommendation
    if advice is not None:
        lines += [f"**{cell(advice.summary)}**", ""]
        ranking = ranking_line(assessment)
        if ranking:
            lines += [f"_{cell(ranking)}_", ""]
        lines += [f"- {cell(reason)}" for reason in advice.reasons]
        lines.append("")
        calls = close_call_lines(advice.close_calls, advice.prefer)
        if calls:
            lines += ["**Close call**", ""] + [f"- {cell(c)}" for c in calls] + [""]
    headers, rows = table_cells(assessment)
    lines.append("| " + " | ".join(cell(h) for h in headers) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    lines.append("")
    lines += _placement(assessment)
    if advice is not None and advice.rejected:
        lines += ["<details><summary>Why not the others</summary>", ""]
        lines += [f"- **{cell(name)}**: {cell(why)}" for name, why in advice.rejected.items()]
        lines += ["", "</details>", ""]
    lines += _searches(assessment)
    calibrated = [line for line in map(calibration_line, assessment.rungs) if line]
    if calibrated:
        lines += ["**Contextual calibration**", ""] + [f"- {cell(line)}" for line in calibrated] + [""]
    if assessment.distillation:
        lines += ["**Distillation**", ""] + [f"- {cell(distillation_line(d))}" for d in assessment.distillation] + [""]
    if advice is not None and advice.warnings:
        lines += ["**Caveats**", ""] + [f"- {cell(w)}" for w in advice.warnings] + [""]
    audit = audit_lines(assessment)
    if audit:
        lines += ["**Data audit**", ""] + [f"- {cell(line)}" for line in audit] + [""]
    note = cost_note(assessment)
    footer = f"{task.n_test} test examples; model {cell(task.model)}; measured on {cell(measured_on(assessment))}."
    lines.append(f"_{footer}{' ' + cell(note) + '.' if note else ''}_")
    return "\n".join(lines) + "\n"
