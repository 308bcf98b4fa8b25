"""CSV and TSV files read strictly with the csv module: one row per line, every row as wide as the header.

A stray quote at the start of a field opens a quoted field that runs on over the following lines;
read leniently, it merges rows and gives one row another's label, with no message. So a field that
runs past the end of its line is refused, naming the line where it starts: such a file cannot be
told from a stray quote, and text with line breaks belongs in JSONL. Cells are kept as written
(text; an empty cell is missing), never guessed into numbers, booleans or "NA" as missing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.data.reading import MAX_ROW_BYTES, RowTooLong, text_lines
from harness.errors import InputError


class _RunsOn(Exception):
    """The csv reader asked for another line before its row ended."""


def table_rows(path: Path, delimiter: str) -> list[dict[str, Any]]:
    """The file's rows as dicts keyed by the header's names; every problem one InputError naming the line."""
    previous = csv.field_size_limit(MAX_ROW_BYTES)  # csv's own default (128 KiB) is below the row limit
    try:
        return _rows(path, delimiter)
    finally:
        csv.field_size_limit(previous)


def _rows(path: Path, delimiter: str) -> list[dict[str, Any]]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    state = {"line": 0, "start": 1}

    def feed() -> Iterator[str]:
        for number, text in text_lines(path):
            if number > state["start"]:
                raise _RunsOn()
            state["line"] = number
            yield text

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[dict[str, Any]] = []
    while True:
        state["start"] = state["line"] + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except _RunsOn:
            raise _runs_on(path, state["start"], kind) from None
        except csv.Error as error:
            if str(error) == "unexpected end of data":  # the file ended inside a quoted field
                raise _runs_on(path, state["start"], kind) from None
            cause = str(error)
            if cause.startswith("new-line character seen"):  # csv's words for a lone "\r" (old Mac line ends)
                cause = "a carriage return inside a row; save it with \\n or \\r\\n line ends"
            raise InputError(f"{path} line {state['line']}: not valid {kind} ({cause})") from None
        except RowTooLong as error:
            raise RowTooLong(path, error.line, _leading_id(error.head, header, delimiter)) from None
        if not fields:
            continue  # a blank line
        if header is None:
            header = _header(path, state["line"], fields)
            continue
        if len(fields) != len(header):
            raise InputError(
                f"{path} line {state['line']}: {len(fields)} field{'s' * (len(fields) != 1)}, "
                f"but the header has {len(header)} "
                f"({', '.join(header)}); a stray delimiter or quote?"
            )
        rows.append({name: value if value != "" else None for name, value in zip(header, fields, strict=True)})
    return rows


def _runs_on(path: Path, line: int, kind: str) -> InputError:
    return InputError(
        f"{path} line {line}: a quoted field runs past the end of the line (a stray quote?); "
        f"{kind} rows are one line each here, so text with line breaks belongs in JSONL"
    )


def _header(path: Path, line: int, names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{path} line {line}: column {name!r} appears twice in the header")
        seen.add(name)
    return names


def _leading_id(head: bytes, header: list[str] | None, delimiter: str) -> str | None:
    """The value of the `id` column of a refused row, when it is among the row's first fields."""
    if header is None or "id" not in header:
        return None
    try:
        fields = next(csv.reader([head.decode("utf-8", "ignore").split("\n")[0]], delimiter=delimiter), [])
    except csv.Error:
        return None
    index = header.index("id")
    return fields[index] if index < len(fields) - 1 and fields[index] else None
