"""The gate's checks as a terminal table, JUnit XML (one test case per check) and Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree

from rich.table import Table
from rich.text import Text

from advisor.decision.gate import Check
from advisor.report.markdown import cell


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def gate_table(checks: Sequence[Check]) -> Table:
    """One row per check, failures in red."""
    failed = sum(not c.passed for c in checks)
    table = Table(title=f"Gate: {len(checks) - failed} of {len(checks)} checks passed")
    for title in ("Rung", "Check", "Baseline", "Current", "Limit", "Result", "Detail"):
        table.add_column(title, justify="right" if title in ("Baseline", "Current") else "left")
    for check in checks:
        verdict = Text("pass", style="green") if check.passed else Text("FAIL", style="bold red")
        table.add_row(  # Text, not markup: rung names and details quote the user's task
            Text(check.rung),
            Text(check.check),
            _number(check.baseline),
            _number(check.current),
            Text(check.limit),
            verdict,
            Text(check.detail),
        )
    return table


def junit_xml(checks: Sequence[Check]) -> str:
    """JUnit XML: a test suite with one test case per check; a failed check carries a <failure>."""
    suite = ElementTree.Element(
        "testsuite",
        name="ladder-gate",
        tests=str(len(checks)),
        failures=str(sum(not c.passed for c in checks)),
        errors="0",
        skipped="0",
    )
    for check in checks:
        case = ElementTree.SubElement(suite, "testcase", classname=f"ladder.gate.{check.rung}", name=check.name)
        if not check.passed:
            failure = ElementTree.SubElement(
                case, "failure", message=f"{check.name}: {check.detail}", type="regression"
            )
            failure.text = f"limit: {check.limit}\n{check.detail}"
        else:
            ElementTree.SubElement(case, "system-out").text = check.detail
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def gate_markdown(checks: Sequence[Check]) -> str:
    """A pull-request comment: the verdict, then the table of checks."""
    failed = [c for c in checks if not c.passed]
    head = (
        f"### Ladder gate: failed ({len(failed)} of {len(checks)} checks)"
        if failed
        else f"### Ladder gate: passed ({len(checks)} checks)"
    )
    lines = [head, "", "| | Rung | Check | Baseline | Current | Limit | Detail |", "|---|---|---|---:|---:|---|---|"]
    for check in sorted(checks, key=lambda c: c.passed):
        mark = "✅" if check.passed else "❌"
        lines.append(
            f"| {mark} | {cell(check.rung)} | {cell(check.check)} | {_number(check.baseline)} | "
            f"{_number(check.current)} | {cell(check.limit)} | {cell(check.detail)} |"
        )
    return "\n".join(lines) + "\n"
