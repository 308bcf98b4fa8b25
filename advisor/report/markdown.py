"""The report as Markdown: short enough for a pull-request comment."""

from __future__ import annotations

from advisor.assessment import Assessment
from advisor.report.formatting import audit_lines, cost_note, measured_on, table_cells


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, no line breaks, no raw HTML."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").split())


def render_markdown(assessment: Assessment) -> str:
    """Recommendation, the side-by-side table, why not the others, warnings, and where it was measured."""
    task = assessment.task
    lines = [f"## Ladder: {cell(task.name)}", ""]
    advice = assessment.recommendation
    if advice is not None:
        lines += [f"**{cell(advice.summary)}**", ""]
        lines += [f"- {cell(reason)}" for reason in advice.reasons]
        lines.append("")
    headers, rows = table_cells(assessment)
    lines.append("| " + " | ".join(cell(h) for h in headers) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    lines.append("")
    if advice is not None and advice.rejected:
        lines += ["<details><summary>Why not the others</summary>", ""]
        lines += [f"- **{cell(name)}**: {cell(why)}" for name, why in advice.rejected.items()]
        lines += ["", "</details>", ""]
    if advice is not None and advice.warnings:
        lines += ["**Warnings**", ""] + [f"- {cell(w)}" for w in advice.warnings] + [""]
    audit = audit_lines(assessment)
    if audit:
        lines += ["**Data audit**", ""] + [f"- {cell(line)}" for line in audit] + [""]
    note = cost_note(assessment)
    footer = f"{task.n_test} test examples; model {cell(task.model)}; measured on {cell(measured_on(assessment))}."
    lines.append(f"_{footer}{' ' + cell(note) + '.' if note else ''}_")
    return "\n".join(lines) + "\n"
