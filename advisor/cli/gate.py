"""`advisor gate`: a run against a baseline, as a CI check."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from advisor.cli.support import reports_errors
from harness.metrics.measurement import Measurement


@click.command()
@click.argument("current", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The earlier run.")
@click.option("--task", "task_file", type=click.Path(path_type=Path, dir_okay=False), help="Read limits from `gates:`.")
@click.option("--max-drop", type=float, help="Largest allowed absolute drop in a quality metric (0-1 scale).")
@click.option("--max-relative-drop", type=float, help="Largest allowed relative drop in a quality metric (0.05 = 5%).")
@click.option("--max-latency-rise", type=float, help="Largest allowed relative rise in p95 latency (0.5 = 50%).")
@click.option("--max-cost-rise", type=float, help="Largest allowed relative rise in $ per 1k requests.")
@click.option("--max-forgetting", type=float, help="Largest allowed drop in probe accuracy against the base model.")
@click.option("--confidence", type=float, help="Confidence of the significance test (default 0.95).")
@click.option("--rung", "rungs", multiple=True, help="Gate only these rungs (repeatable).")
@click.option("--metric", "metrics", multiple=True, help="Gate only these quality metrics (repeatable).")
@click.option("--strict", is_flag=True, default=None, help="Fail on any drop past a limit, significant or not.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML (one case per check).")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False), help="Write a pull-request comment.")
@reports_errors
def gate(
    current: Path, baseline: Path, task_file: Path | None, junit: Path | None, markdown: Path | None, **flags: Any
) -> None:
    """Fail when CURRENT (an Assessment JSON) is worse than --baseline: exit 0 pass, 1 regression, 2 bad input.

    A quality drop past a limit fails only when it is significant (paired on the shared test examples),
    unless --strict. p95 latency and $ per 1k requests fail on a relative rise past their limits.
    """
    from advisor.decision.assessment import read_assessment
    from advisor.task.spec import GatesSection, load_task

    settings = load_task(task_file).spec.gates if task_file else GatesSection()
    renames = {"max_latency_rise": "max_p95_latency_rise"}
    updates = {renames.get(k, k): (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()}
    updates = {k: v for k, v in updates.items() if v is not None and v != []}
    settings = _validated_gates(settings, updates)
    gate_and_exit(read_assessment(current), read_assessment(baseline), settings, junit, markdown)


def _validated_gates(settings: Any, updates: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from advisor.task.spec import GatesSection, describe_validation_error
    from harness.errors import InputError

    try:
        return GatesSection.model_validate({**settings.model_dump(), **updates})
    except ValidationError as error:
        raise InputError(f"gate options: {describe_validation_error(error, GatesSection)}") from None


def gate_and_exit(
    current: Any, baseline: Any, settings: Any, junit: Path | None, markdown: Path | None, console: Any = None
) -> None:
    """Gate `current` against `baseline`, print the checks (on `console`, else standard output), exit 1 on a
    regression."""
    from advisor.decision.gate import gate_passed, run_gate
    from advisor.report.gate import gate_markdown, gate_table, junit_xml
    from advisor.report.terminal import output_console
    from harness.data.atomic import write_text_atomically

    checks = run_gate(current, baseline, settings, Measurement(seed=current.task.seed))
    (console or output_console()).print(gate_table(checks))
    if junit is not None:
        write_text_atomically(junit, junit_xml(checks))
    if markdown is not None:
        write_text_atomically(markdown, gate_markdown(checks))
    if not gate_passed(checks):
        sys.exit(1)
