"""`advisor estimate --markdown`: the same parts as the terminal form, as Markdown tables and lists."""

from __future__ import annotations

from advisor.measure.estimate import EstimateReport
from advisor.report import estimate_rows as parts
from advisor.report.markdown import cell


def estimate_markdown(report: EstimateReport) -> str:
    """The header, the three tables, the launch commands and the assumptions."""
    lines = [f"# advisor estimate: {cell(report.model)}", "", parts.header_line(report), ""]
    lines += _table(parts.memory_grid(report)) + _table(parts.training_grid(report))
    lines += ["Launch (from the task's folder):", ""]
    lines += [f"- {label}: `{command}`" for label, command in parts.launch_items(report)]
    lines += [f"- {note}" for note in parts.launch_notes(report)]
    lines += ["", *_table(parts.serving_grid(report))]
    lines += [f"- {line}" for line in report.assumptions]
    return "\n".join(lines) + "\n"


def _table(grid: parts.Grid) -> list[str]:
    lines = [f"## {grid.title}", "", "| " + " | ".join(cell(h) for h in grid.headers) + " |"]
    lines.append("|" + "|".join("---" if h in parts.LEFT_ALIGNED else "---:" for h in grid.headers) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in grid.rows]
    return lines + (["", grid.caption, ""] if grid.caption else [""])
