"""`advisor estimate` in the terminal: the header, the memory table, the way each method runs on each GPU with its
launch commands, and the serving table.

The numbers are computed by advisor/measure/estimate.py; the text of each part is advisor/report/estimate_rows.py.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from advisor.measure.estimate import EstimateReport
from advisor.report.estimate_rows import (
    LEFT_ALIGNED,
    Grid,
    header_line,
    launch_items,
    launch_notes,
    memory_grid,
    serving_grid,
    training_grid,
)


def render_estimate(report: EstimateReport) -> list[RenderableType]:
    """The header, the memory table, the training table and its commands, the serving table and the assumptions."""
    parts: list[RenderableType] = [Text(header_line(report), style="bold"), _table(memory_grid(report))]
    parts.append(_table(training_grid(report)))
    parts.append(Text("Launch (from the task's folder):", style="bold"))
    parts += [Text(f"  {label}: {command}") for label, command in launch_items(report)]
    parts += [Text(f"  {note}") for note in launch_notes(report)]
    parts.append(_table(serving_grid(report)))
    return parts + [Text(line, style="dim") for line in report.assumptions]


def _table(grid: Grid) -> Table:
    table = Table(title=grid.title, caption=escape(grid.caption) if grid.caption else None)
    for header in grid.headers:
        table.add_column(header, justify="left" if header in LEFT_ALIGNED else "right")
    for n, row in enumerate(grid.rows):
        table.add_row(
            *(escape(cell) for cell in row),
            style="bold" if row[0] == "total" else None,
            end_section=n in grid.section_ends,
        )
    return table


def print_estimate(report: EstimateReport, console: Console) -> None:
    """Print every part of the estimate, in order."""
    for renderable in render_estimate(report):
        console.print(renderable)
