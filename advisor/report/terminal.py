"""The results table and the recommendation in the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from advisor.assessment import Assessment
from advisor.calibration_notes import calibration_line
from advisor.close_calls import close_call_lines
from advisor.distillation import distillation_line
from advisor.report.formatting import audit_lines, cost_note, measured_on, ranking_line, table_cells
from advisor.report.placement import COST_HEADERS, cost_cells, runs_anywhere_else, scoring_line
from advisor.training_notes import search_line


def results_table(assessment: Assessment) -> Table:
    """One row per rung: quality ± 95% CI, latency, throughput, tokens, dollars and forgetting."""
    task = assessment.task
    table = Table(
        title=f"{task.name}: {task.n_test} test examples, model {task.model}",
        caption="p50/p95: latency at batch size 1; ex/s: batched throughput; tok: mean tokens per request; "
        f"forgetting: probe accuracy against the base model. Measured on {measured_on(assessment)}",
    )
    headers, rows = table_cells(assessment)
    for index, title in enumerate(headers):
        table.add_column(title, style="bold" if index == 0 else None, justify="left" if index == 0 else "right")
    no_label = any(r.no_label_outputs for r in assessment.rungs)
    if no_label:
        table.add_column("no label", justify="right")
    for index, cells in enumerate(rows):
        counts = [str(assessment.rungs[index].no_label_outputs) if index < len(assessment.rungs) else "-"]
        table.add_row(*cells, *(counts if no_label else []), style="dim" if index >= len(assessment.rungs) else None)
    return table


def placement_table(assessment: Assessment) -> Table:
    """Local and remote rungs side by side: where each runs, how it was scored, and its $ there."""
    table = Table(title="Where each rung runs, and what it costs there")
    for index, title in enumerate(COST_HEADERS):
        table.add_column(title, justify="right" if 3 <= index <= 5 else "left")
    for cells in cost_cells(assessment):
        table.add_row(*(escape(c) for c in cells))
    return table


def recommendation_panel(assessment: Assessment) -> Panel | None:
    """The recommendation with its reasons, why not the others, and warnings."""
    advice = assessment.recommendation
    if advice is None:
        return None
    lines = [f"[bold]{advice.summary}[/bold]", ""]
    ranking = ranking_line(assessment)
    if ranking:
        lines += [f"[dim]{ranking}[/dim]", ""]
    lines += [f"• {reason}" for reason in advice.reasons]
    calls = close_call_lines(advice.close_calls, advice.prefer)
    if calls:
        lines += ["", "[bold blue]Close call[/bold blue]"] + [f"• {c}" for c in calls]
    if advice.rejected:
        lines += ["", "[bold]Why not the others[/bold]"]
        lines += [f"• {name}: {why}" for name, why in advice.rejected.items()]
    if advice.warnings:
        lines += ["", "[bold yellow]Caveats[/bold yellow]"]
        lines += [f"• {warning}" for warning in advice.warnings]
    style = "green" if advice.rung else "red"
    return Panel("\n".join(lines), title="Recommendation", border_style=style, expand=False)


def print_results(assessment: Assessment, console: Console) -> None:
    """Print the table, the cost assumptions, the store reuse, then the recommendation."""
    console.print(results_table(assessment))
    note = cost_note(assessment)
    if runs_anywhere_else(assessment):
        console.print(placement_table(assessment))
    elif note:
        console.print(f"[dim]{note}[/dim]", highlight=False)
    scoring = scoring_line(assessment)
    if scoring:
        console.print(f"[yellow]{escape(scoring)}[/yellow]", highlight=False)
    for rung in assessment.rungs:
        if rung.reused:
            console.print(
                f"[dim]{rung.name}: {rung.reused} of {rung.reused + rung.computed} outputs reused from the store[/dim]"
            )
    for rung in assessment.rungs:
        line = search_line(rung)
        if line:
            console.print(f"[dim]{escape(line)}[/dim]", highlight=False)
        calibration = calibration_line(rung)
        if calibration:
            console.print(f"[dim]{escape(calibration)}[/dim]", highlight=False)
    for summary in assessment.distillation:
        console.print(f"[cyan]{escape(distillation_line(summary))}[/cyan]", highlight=False)
    for line in audit_lines(assessment):
        style = "red" if line.startswith("error") else "yellow" if line.startswith("warning") else "dim"
        console.print(f"[{style}]{escape(line)}[/{style}]", highlight=False)
    panel = recommendation_panel(assessment)
    if panel is not None:
        console.print(panel, markup=True, highlight=False)


def output_console() -> Console:
    """Standard output; wide when it is a file or pipe, so the table never folds (rich assumes 80)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200, soft_wrap=True)
