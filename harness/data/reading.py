"""Reading a data file's lines and JSON Lines records strictly, one bounded line at a time.

A row may hold at most MAX_ROW_BYTES of UTF-8 text. One example is read whole by the model, and
even a 128k-token context is about 0.5 MB of text, so a longer row is a corrupt or mis-exported file,
not data; refusing it while reading (never holding more than the limit of one line in memory) keeps
a 5 GB line from costing 5 GB before anything can say so, and bounds the memory of every later step
that takes a row whole (tokenizing, embedding, auditing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import InputError

MAX_ROW_BYTES = 1 << 20  # 1 MiB of UTF-8 text per row (per line of JSONL, CSV or TSV, per record of a JSON array)
MAX_ROW_TEXT = "1 MiB"
BOM = b"\xef\xbb\xbf"
_HEAD = 4096  # bytes of a refused line kept, to name the row's id when it comes first
_LEADING_ID = re.compile(rb'\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.){1,200}"|-?\d{1,40})')


class RowTooLong(InputError):
    """A row over MAX_ROW_BYTES: names the file, the line (and the id when known) and the limit."""

    def __init__(self, path: Path, line: int, row_id: str | None = None, head: bytes = b""):
        named = f" (id {row_id!r})" if row_id is not None else ""
        super().__init__(
            f"{path} line {line}{named}: the row is longer than {MAX_ROW_TEXT} ({MAX_ROW_BYTES} bytes of UTF-8), "
            "the most one row may hold; shorten it"
        )
        self.path = path
        self.line = line
        self.head = head


def bounded_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes with the line end) for every line; a line over the limit raises RowTooLong.

    Only "\\n" ends a line: JSON text may hold U+2028 and other characters str.splitlines would split at.
    """
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(MAX_ROW_BYTES + 2):  # room for the row and its line end
            number += 1
            if len(raw.removesuffix(b"\n").removesuffix(b"\r")) > MAX_ROW_BYTES:
                raise RowTooLong(path, number, _leading_id(raw[:_HEAD]), raw[:_HEAD])
            yield number, raw


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text with its line end) for every line; a UTF-8 BOM dropped, bad UTF-8 and long lines refused."""
    offset = 0
    for number, raw in bounded_lines(path):
        if number == 1 and raw.startswith(BOM):
            raw, offset = raw[len(BOM) :], len(BOM)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = offset + error.start
            raise InputError(f"{path} line {number}: not UTF-8 text (byte {byte}); save it as UTF-8") from None
        offset += len(raw)
        yield number, text


class RepeatedKey(ValueError):
    """A key twice in one JSON object (raised from inside the parser)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: a repeated key would silently lose a value."""
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise RepeatedKey(key)
        record[key] = value
    return record


def json_line_records(path: Path) -> list[tuple[int, Any]]:
    """(line number, JSON value) for every non-blank line of a JSON Lines file."""
    records = []
    for number, line in text_lines(path):
        if line.strip():
            records.append((number, parse_json(line, f"{path} line {number}", "one JSON object per line")))
    return records


def _leading_id(head: bytes) -> str | None:
    """The id of a JSON record whose first key is "id", from the start of its text (None for other rows)."""
    found = _LEADING_ID.match(head)
    try:
        return str(json.loads(found.group(1))) if found else None
    except ValueError:
        return None


def parse_json(text: str, where: str, expected: str) -> Any:
    """One JSON text; a syntax error, a repeated key or nesting too deep for the parser is an InputError."""
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except RepeatedKey as error:
        raise InputError(f"{where}: key {error.key!r} appears twice in one object") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: not valid JSON ({error.msg}); expected {expected}") from None
    except RecursionError:
        raise InputError(f"{where}: not valid JSON here (nested too deeply); expected {expected}") from None
