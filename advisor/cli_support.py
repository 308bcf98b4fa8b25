"""What every `advisor` command shares: errors as exit codes and one-line messages, quiet libraries."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape

from harness.distributed import current_ranks
from harness.errors import LadderError
from harness.library_warnings import silence_unfixable_warnings

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)


def quiet_libraries() -> None:
    """Library progress bars and advice would bury our own output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
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
