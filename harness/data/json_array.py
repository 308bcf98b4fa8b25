"""A JSON array of records, read a chunk at a time: each record parsed on its own, none over the row limit.

json.load would hold the whole file, and every record in it, before a record's size could be checked;
here at most one record (MAX_ROW_BYTES) and one chunk of text are held beyond the records kept.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, BinaryIO

from harness.data.reading import BOM, MAX_ROW_BYTES, RepeatedKey, RowTooLong, unique_keys
from harness.errors import InputError

_CHUNK = 1 << 20
_SPACE = " \t\n\r"


class NotAnArray(InputError):
    """The file's JSON text does not start with '['."""


def json_array_records(path: Path) -> list[tuple[int, Any]]:
    """(line on which it starts, JSON value) for every element of the file's top-level array."""
    with path.open("rb") as handle:
        text = _Text(path, handle)
        if text.next_char() != "[":
            raise NotAnArray(f"{path}: expected a JSON array (its text starts with '[')")
        text.pos += 1
        records: list[tuple[int, Any]] = []
        if text.next_char() == "]":
            text.pos += 1
        else:
            while True:
                records.append(text.record())
                after = text.next_char()
                text.pos += 1
                if after == "]":
                    break
                if after != ",":
                    raise text.invalid("expected ',' or ']' after a record")
        if text.next_char():
            raise text.invalid("extra data after the array")
    return records


class _Text:
    """The file's text, decoded a chunk at a time; `buf[pos:]` is what is not read yet."""

    def __init__(self, path: Path, handle: BinaryIO):
        self.path = path
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.newlines_read = 0  # in the bytes decoded so far, for the line of a decoding error
        self.mark, self.mark_line = 0, 1  # a position in buf and its line: lines are counted forward from it
        self.parser = json.JSONDecoder(object_pairs_hook=unique_keys)

    def more(self) -> bool:
        """Append the next chunk, dropping what is read; False at the end of the file."""
        if self.eof:
            return False
        raw = self.handle.read(_CHUNK)
        start = BOM if self.bytes_read == 0 and raw.startswith(BOM) else b""
        try:
            decoded = self.decoder.decode(raw[len(start) :], final=not raw)
        except UnicodeDecodeError as error:
            line = self.newlines_read + raw[: len(start) + error.start].count(b"\n") + 1
            byte = self.bytes_read + len(start) + error.start
            raise InputError(f"{self.path} line {line}: not UTF-8 text (byte {byte}); save the file as UTF-8") from None
        self.bytes_read += len(raw)
        self.newlines_read += raw.count(b"\n")
        line = self.line_of(self.pos)
        self.buf, self.pos, self.mark, self.mark_line = self.buf[self.pos :] + decoded, 0, 0, line
        self.eof = not raw
        return True

    def line_of(self, index: int) -> int:
        """The line of a position at or after the last one asked about."""
        self.mark_line += self.buf.count("\n", self.mark, index)
        self.mark = index
        return self.mark_line

    def next_char(self) -> str:
        """The next character that is not white space ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def record(self) -> tuple[int, Any]:
        """The element at `pos` and its line, reading more text until it is whole or over the limit."""
        self.next_char()
        line = self.line_of(self.pos)
        where = f"{self.path} line {line}"
        while True:
            try:
                value, end = self.parser.raw_decode(self.buf, self.pos)
            except RepeatedKey as error:
                raise InputError(f"{where}: key {error.key!r} appears twice in one object") from None
            except RecursionError:
                raise InputError(f"{where}: not valid JSON here (nested too deeply)") from None
            except json.JSONDecodeError as error:
                if len(self.buf) - self.pos > MAX_ROW_BYTES:
                    raise RowTooLong(self.path, line) from None
                if self.more():
                    continue
                raise InputError(f"{self.path} line {self.line_of(error.pos)}: not valid JSON ({error.msg})") from None
            if len(self.buf) - end < 4 and self.more():
                continue  # a number may go on in the next chunk ("1" | "5", or "1." | "5", "1e+" | "5")
            break
        if end - self.pos > MAX_ROW_BYTES // 4 and len(self.buf[self.pos : end].encode("utf-8")) > MAX_ROW_BYTES:
            row_id = value.get("id") if isinstance(value, dict) else None
            raise RowTooLong(self.path, line, None if row_id is None else str(row_id))
        self.pos = end
        return line, value

    def invalid(self, problem: str) -> InputError:
        return InputError(f"{self.path} line {self.line_of(self.pos)}: not valid JSON ({problem})")
