"""Preference pairs for the dpo rung: `{prompt, chosen, rejected}` rows, or OpenAI's preference format.

    {"prompt": "Ticket: I was charged twice", "chosen": "billing", "rejected": "cancellation"}
    {"input": {"messages": [{"role": "user", "content": "..."}]},
     "preferred_output": [{"role": "assistant", "content": "..."}],
     "non_preferred_output": [{"role": "assistant", "content": "..."}]}

A `prompt` may also be a list of chat messages. Every problem is one line naming the file and the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.loading import read_rows
from harness.errors import InputError
from harness.types import ExampleInput, Message

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PreferencePair:
    """A prompt (text, or chat turns ending with the user's) and two answers, the first preferred."""

    id: str
    prompt: ExampleInput
    chosen: str
    rejected: str
    source: str  # where the pair came from: "file", or how it was mined


def load_preferences(path: Path) -> list[PreferencePair]:
    """Every row of the file as a pair; bad rows are one line with the file, the row and what was expected."""
    rows = read_rows(path)
    if not rows:
        raise InputError(f"{path}: no preference pairs; expected rows of {{prompt, chosen, rejected}}")
    pairs = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{path} row {number}"
        pair = _openai_pair(row, where) if "preferred_output" in row else _plain_pair(row, where)
        if pair.chosen.strip() == pair.rejected.strip():
            raise InputError(f"{where}: chosen and rejected are the same answer; a pair needs two different ones")
        row_id = str(row.get("id", number))
        if row_id in seen:
            raise InputError(f"{where}: id '{row_id}' repeats row {seen[row_id]}; ids must be unique")
        seen[row_id] = number
        pairs.append(PreferencePair(row_id, pair.prompt, pair.chosen, pair.rejected, "file"))
    return pairs


def _plain_pair(row: dict[str, Any], where: str) -> PreferencePair:
    missing = [name for name in ("prompt", "chosen", "rejected") if name not in row]
    if missing:
        columns = ", ".join(sorted(row)) or "none"
        raise InputError(f"{where}: no field {missing[0]!r}; expected prompt, chosen and rejected (columns: {columns})")
    prompt = row["prompt"]
    turns = _messages(prompt, where, "prompt") if isinstance(prompt, list) else _text(prompt, where, "prompt")
    return PreferencePair(
        "", turns, _text(row["chosen"], where, "chosen"), _text(row["rejected"], where, "rejected"), ""
    )


def _openai_pair(row: dict[str, Any], where: str) -> PreferencePair:
    source = row.get("input")
    if not isinstance(source, dict) or "messages" not in source:
        raise InputError(f"{where}: 'input' must be an object with 'messages' (OpenAI's preference format)")
    turns = _messages(source["messages"], where, "input.messages")
    answers = [_assistant(row.get(name), where, name) for name in ("preferred_output", "non_preferred_output")]
    return PreferencePair("", turns, answers[0], answers[1], "")


def _messages(value: Any, where: str, field: str) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: '{field}' must be a non-empty list of {{role, content}} messages")
    turns: list[Message] = []
    for number, turn in enumerate(value, start=1):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise InputError(f"{where}: {field} message {number} needs a role ({', '.join(ROLES)}) and text content")
        turns.append({"role": turn["role"], "content": turn["content"]})
    if turns[-1]["role"] != "user":
        raise InputError(f"{where}: '{field}' must end with the user's message (the answers come after it)")
    return tuple(turns)


def _assistant(value: Any, where: str, field: str) -> str:
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise InputError(f"{where}: '{field}' must be a list of one assistant message")
    message = value[0]
    if message.get("role") != "assistant":
        raise InputError(f"{where}: '{field}' must be the assistant's message")
    return _text(message.get("content"), where, f"{field}.content")


def _text(value: Any, where: str, field: str) -> str:
    if value is None:  # a row without the field (other rows have it) reads as null
        raise InputError(f"{where}: '{field}' is missing; expected text")
    if not isinstance(value, str):
        raise InputError(f"{where}: '{field}' must be text (got {type(value).__name__})")
    if not value.strip():
        raise InputError(f"{where}: '{field}' is empty; expected text")
    return value
