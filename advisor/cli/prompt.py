"""`advisor prompt`: see exactly what a rung sends to the model for one test example."""

from __future__ import annotations

import json
from pathlib import Path

import click

from advisor.cli.support import err_console, reports_errors, task_argument


@click.command()
@task_argument
@click.option("--rung", "rung_name", required=True, help="The rung of the task whose prompt to show.")
@click.option("--example", "example_id", help="The id of the test example (default: the first test example).")
@click.option("--json", "as_json", is_flag=True, help="Print the view as JSON on stdout.")
@reports_errors
def prompt(task_file: Path, rung_name: str, example_id: str | None, as_json: bool) -> None:
    """Show what rung RUNG of TASK_FILE sends to the model for one test example, and its answer.

    The conversation (instruction, demonstrations, passages, the question), the prompt text after the
    chat template and its token count. A rung that searches uses its choice on validation, as `assess`
    does (stored choices are reused). A tuned rung is not trained: its prompt is shown, without an answer.
    """
    from advisor.measure.prompt_view import view_prompt
    from advisor.report.progress import progress_hooks, stop
    from advisor.report.prompt import prompt_text
    from advisor.report.terminal import output_console

    hooks = progress_hooks(err_console)
    try:
        view = view_prompt(task_file, rung_name, example_id, hooks)
    finally:
        stop(hooks)
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2, ensure_ascii=False))
    else:
        output_console().print(prompt_text(view), soft_wrap=True)
