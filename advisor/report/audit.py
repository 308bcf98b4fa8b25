"""The data audit in the terminal (rich): one table of findings, or one line when the data are clean."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from advisor.task.audit import AuditReport

SEVERITY_STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}
SUMMARY_NAMES = {"error": "error", "warning": "warning", "info": "note"}


def audit_table(report: AuditReport) -> Table:
    """One row per finding, errors first: severity, finding, count, the first row ids."""
    table = Table(title=Text(f"Data audit: {report.task} ({_rows(report)})"))
    table.add_column("Severity", no_wrap=True)
    table.add_column("Finding", no_wrap=True)
    table.add_column("Count", justify="right", no_wrap=True)
    table.add_column("What", ratio=3)
    table.add_column("Example rows", ratio=1)
    for finding in report.findings:
        style = SEVERITY_STYLES[finding.severity]
        shown = ", ".join(finding.row_ids[:5]) + (", …" if finding.count > min(5, len(finding.row_ids)) else "")
        table.add_row(  # Text, not markup: messages and ids quote the user's data
            Text(finding.severity, style=style),
            Text(finding.code),
            Text(str(finding.count)),
            Text(finding.message),
            Text(shown if finding.row_ids else "-"),
        )
    return table


def print_audit(report: AuditReport, console: Console) -> None:
    """The findings table, or one line saying the data are clean (with any info findings below it)."""
    if report.clean:
        console.print(
            f"[bold green]Clean:[/bold green] no duplicates, leakage, label conflicts, length or format problems "
            f"in {escape(report.task)} ({_rows(report)})",
            highlight=False,
        )
        for finding in report.findings:
            console.print(f"[dim]{finding.code}: {escape(finding.message)}[/dim]", highlight=False)
    else:
        console.print(audit_table(report))
        counts = report.counts()
        summary = ", ".join(_plural(counts[level], name) for level, name in SUMMARY_NAMES.items())
        console.print(summary, highlight=False)
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/dim]", highlight=False)
    seconds = report.seconds
    if seconds:
        console.print(
            f"[dim]audited in {seconds['total']:.1f} s (embedding model load {seconds['embedder_load']:.1f} s, "
            f"embedding {seconds['embed']:.1f} s, "
            f"near-duplicate search {seconds['search']:.1f} s)[/dim]",
            highlight=False,
        )


def _rows(report: AuditReport) -> str:
    return ", ".join(f"{name} {n}" for name, n in report.rows.items() if n) or "data not loaded"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
