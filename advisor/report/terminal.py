"""The results table and the recommendation in the terminal (rich).

Every string is printed as rich Text, never as markup: rung names, labels and reasons quote the user's data,
and a `[/red]` in a label must print as itself.
"""

from __future__ import annotations

import os

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from advisor.decision.assessment import Assessment
from advisor.decision.calibration_notes import calibration_line
from advisor.decision.close_calls import close_call_lines
from advisor.decision.distillation import distillation_line
from advisor.decision.training_notes import search_line
from advisor.report.formatting import audit_lines, cost_note, measured_on, ranking_line, table_cells
from advisor.report.placement import COST_HEADERS, cost_cells, runs_anywhere_else, scoring_line
from advisor.report.table_fit import Grid, fitted_tables

# a pipe or a file has no width of its own: wide enough for the table on one line, and text wraps there
PIPE_WIDTH = 200


def results_tables(assessment: Assessment, width: int) -> list[RenderableType]:
    """One row per rung: quality ± 95% CI, latency, throughput, tokens, dollars and forgetting, in as many
    tables as `width` needs (each repeating the rung column)."""
    task = assessment.task
    headers, rows = table_cells(assessment)
    counted = len(assessment.rungs)
    if any(r.no_label_outputs for r in assessment.rungs):
        headers = [*headers, "no label"]
        rows = [
            [*cells, str(assessment.rungs[i].no_label_outputs) if i < counted else "-"] for i, cells in enumerate(rows)
        ]
    grid = Grid(headers, rows, frozenset(range(counted, len(rows))))
    caption = (
        "p50/p95: latency at batch size 1; ex/s: batched throughput; tok: mean tokens per request; "
        f"forgetting: probe accuracy against the base model. Measured on {measured_on(assessment)}"
    )
    title = f"{task.name}: {task.n_test} test examples, model {task.model}"
    return fitted_tables(grid, width, title, caption, [i > 0 for i in range(len(headers))])


def placement_tables(assessment: Assessment, width: int) -> list[RenderableType]:
    """Local and remote rungs side by side: where each runs, how it was scored, and its $ there."""
    grid = Grid(list(COST_HEADERS), cost_cells(assessment))
    right = [3 <= i <= 5 for i in range(len(COST_HEADERS))]
    return fitted_tables(grid, width, "Where each rung runs, and what it costs there", "", right)


def recommendation_panel(assessment: Assessment) -> Panel | None:
    """The recommendation with its reasons, why not the others, and warnings."""
    advice = assessment.recommendation
    if advice is None:
        return None
    parts: list[RenderableType] = [Text(advice.summary, style="bold")]
    ranking = ranking_line(assessment)
    if ranking:
        parts += [Text(""), Text(ranking, style="dim")]
    parts += [Text(""), _bullets(advice.reasons)]
    sections = [
        ("Close call", "bold blue", close_call_lines(advice.close_calls, advice.prefer)),
        ("Why not the others", "bold", [f"{name}: {why}" for name, why in advice.rejected.items()]),
        ("Caveats", "bold yellow", advice.warnings),
    ]
    for heading, style, lines in sections:
        if lines:
            parts += [Text(""), Text(heading, style=style), _bullets(lines)]
    style = "green" if advice.rung else "red"
    return Panel(Group(*parts), title="Recommendation", border_style=style, expand=False)


def _bullets(lines: list[str]) -> Table:
    """One bullet per line, continuation lines indented under the text."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row("•", Text(line))
    return grid


def _line(console: Console, text: str, style: str | None = None) -> None:
    console.print(Text(text, style=style or ""), highlight=False)


def print_results(assessment: Assessment, console: Console) -> None:
    """Print the table, the cost assumptions, the store reuse, then the recommendation."""
    for table in results_tables(assessment, console.width):
        console.print(table)
    note = cost_note(assessment)
    if runs_anywhere_else(assessment):
        for table in placement_tables(assessment, console.width):
            console.print(table)
    elif note:
        _line(console, note, "dim")
    scoring = scoring_line(assessment)
    if scoring:
        _line(console, scoring, "yellow")
    for rung in assessment.rungs:
        if rung.reused:
            _line(
                console,
                f"{rung.name}: {rung.reused} of {rung.reused + rung.computed} outputs reused from the store",
                "dim",
            )
    for rung in assessment.rungs:
        for line in (search_line(rung), calibration_line(rung)):
            if line:
                _line(console, line, "dim")
    for summary in assessment.distillation:
        _line(console, distillation_line(summary), "cyan")
    for line in audit_lines(assessment):
        _line(console, line, "red" if line.startswith("error") else "yellow" if line.startswith("warning") else "dim")
    panel = recommendation_panel(assessment)
    if panel is not None:
        console.print(panel)


def output_console() -> Console:
    """Standard output. A pipe or a file gets COLUMNS, else PIPE_WIDTH columns (rich would assume 80); text
    wraps at that width rather than running past it or being cropped."""
    probe = Console()
    if probe.is_terminal:
        return probe
    return Console(width=None if os.environ.get("COLUMNS", "").isdigit() else PIPE_WIDTH)
