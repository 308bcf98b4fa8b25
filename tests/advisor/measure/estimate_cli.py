"""`advisor estimate` run through the CLI, as a user runs it, wide enough that no table wraps."""

from __future__ import annotations


def estimate_output(*args: str) -> str:
    """The command's output; it must exit 0."""
    from click.testing import CliRunner

    from advisor.cli.main import main

    result = CliRunner().invoke(main, ["estimate", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output
