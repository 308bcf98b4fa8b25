"""What every `advisor` command shares: errors as exit codes and one-line messages, quiet libraries."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from harness.distributed import current_ranks
from harness.errors import InputError, LadderError
from harness.library_warnings import silence_unfixable_warnings

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)


def quiet_libraries() -> None:
    """Library progress bars and advice would bury our own output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Ladder never downloads (a hub model must already be in the local cache): a stray hub call fails at
    # once instead of retrying for a minute
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # e.g. transformers' GGUF conversion bar, which ignores its own switch
    # bitsandbytes warns at import that an optional hub-fetched CPU kernel is absent; we never fetch it
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    silence_unfixable_warnings()  # library-internal warnings we cannot fix, each listed with why


# every character str.splitlines() breaks a line at, besides "\n" (which becomes a space)
_BREAKING = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS: dict[int, str | int | None] = {
    ord(c): f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in _BREAKING
}


def one_line(text: str) -> str:
    """The message on one line: newlines become spaces, other line-breaking characters their escapes."""
    return " ".join(text.translate(_LINE_BREAKS).split("\n"))


def reports_errors(command: F) -> F:
    """Turn a LadderError into one line on stderr and its exit code; bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LadderError as error:
            message = escape(one_line(str(error)))
            if not current_ranks().is_main:  # every rank of a launch meets the same error; one says it
                sys.exit(error.exit_code)
            err_console.print(f"[bold red]error:[/bold red] {message}", markup=True, highlight=False, soft_wrap=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted: finished results are kept in the store; run again to resume")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def task_in_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A task file, or a folder holding task.yaml (what `advisor init` writes): `advisor assess my-task`."""
    if value is None or not value.is_dir():
        return value
    candidate = value / "task.yaml"
    if not candidate.is_file():
        raise click.BadParameter(f"{value} is a folder with no task.yaml in it; name the task file", ctx, param)
    return candidate


def task_argument(command: F) -> F:
    """The TASK_FILE argument every task command takes: a file, or the folder `advisor init` made."""
    return click.argument("task_file", type=click.Path(path_type=Path), callback=task_in_folder)(command)


def existing_folder(option: str, path: Path) -> Path:
    """An output file the user named: its folder must exist (we do not create folders the user did not ask for)."""
    folder = path.parent
    if path.is_dir():
        raise InputError(f"{option}: {path} is a folder; name a file")
    if not folder.is_dir():
        raise InputError(f"{option}: the folder {folder} does not exist; create it first or name another file")
    return path


def rung_list(option: str, text: str | None) -> tuple[str, ...] | None:
    """Comma-separated rung names, or None when the option was not given. An empty list is an error, not
    "every rung": a CI variable that came out empty must not train every tuned rung."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise InputError(f"{option}: expected comma-separated rung names from the task, got {text!r}")
    return names
