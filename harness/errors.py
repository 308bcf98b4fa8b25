"""Domain errors: the one route from a problem to a one-line message and an exit code.

They live in the lowest layer so every layer can raise them; only the CLI turns them into exit
codes. A bug is never one of these: it keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LadderError(Exception):
    """A problem the user can act on; its message is one line."""

    exit_code = 1


class InputError(LadderError):
    """Bad input: names the file, the field or row, and what was expected."""

    exit_code = 2


class RunError(LadderError):
    """A run that could not finish for a reason outside the input (missing model, full disk)."""

    exit_code = 1


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean a or b?' for the registered names close to `name`, or '' when none is."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(close)}?" if close else ""
