"""Multiple-choice probe items: the shipped general-skills suite, and ARC- or MMLU-style files a user points at.

Probes measure forgetting: the same items are scored on the base model and on a tuned one. Three record shapes
are read, one shape per file, as JSONL or as a JSON array of objects:

- Ladder probes: `{"id", "area", "question", "choices": [4 strings], "answer": 0-3}`. Strict: every problem
  (a repeated option, id or question included) is an InputError.
- ARC: `{"id", "question", "choices": {"text": [...], "label": [...]}, "answerKey"}` (the Hugging Face
  `ai2_arc` export) or the original AI2 JSONL `{"id", "question": {"stem", "choices": [{"text", "label"}]},
  "answerKey"}`. The area is "arc".
- MMLU: `{"question", "choices": [4 strings], "answer": 0-3}` with optional `subject` (the area; "mmlu" when
  absent) and `id` (else `<area>-<line>`); other fields such as `error_type` are ignored.

Public sets are read as published, so three kinds of record in them are skipped and counted in
`ProbeFile.skipped` rather than refused: ARC items with other than 4 choices ("not 4 choices"; ARC-Easy has a
few with 3 or 5), items whose options repeat ("repeated option"), and exact repeats of an earlier item
("repeated item"; MMLU repeats some questions across subjects). The same question with other choices is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.json_array import NotAnArray, json_array_records
from harness.data.reading import json_line_records
from harness.errors import InputError

SHIPPED_PROBES = Path(__file__).parent / "general_skills.jsonl"
N_CHOICES = 4
LADDER, ARC, MMLU = "ladder", "arc", "mmlu"
FORMAT_NAMES = {LADDER: "a Ladder probe record", ARC: "an ARC-style record", MMLU: "an MMLU-style record"}


@dataclass(frozen=True)
class ProbeItem:
    """One multiple-choice question; `answer` is the 0-based index of the correct choice."""

    id: str
    area: str
    question: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class ProbeFile:
    """The probes read from one file, the file's record format, and how many records were skipped, by reason."""

    items: tuple[ProbeItem, ...]
    format: str
    skipped: Mapping[str, int]


class _Skip(Exception):
    """A record of a public set that is left out, with the reason it is counted under."""


def load_probes(path: Path) -> list[ProbeItem]:
    """The probe items of a Ladder, ARC-style or MMLU-style file; bad input raises a one-line InputError."""
    return list(read_probe_file(path).items)


def read_probe_file(path: Path) -> ProbeFile:
    """Read a probe file, with its format and the count of skipped public-set records by reason."""
    records = _read_records(path)
    if not records:
        raise InputError(f"{path}: the file has no records; expected one probe record per line")
    file_format = _shape(records[0][1])
    items: list[ProbeItem] = []
    skipped: Counter[str] = Counter()
    id_lines: dict[str, int] = {}
    seen: dict[Any, int] = {}
    for line, record in records:
        where = f"{path} line {line}"
        if _shape(record) != file_format:
            raise InputError(
                f"{where}: {FORMAT_NAMES[_shape(record)]}, but line {records[0][0]} is "
                f"{FORMAT_NAMES[file_format]}; use one record format per file"
            )
        try:
            item = _PARSERS[file_format](record, where, line)
        except _Skip as skip:
            skipped[str(skip)] += 1
            continue
        if item.id in id_lines:
            raise InputError(f"{where}: id {_show(item.id)} repeats line {id_lines[item.id]}; ids must be unique")
        # Ladder suites must not repeat a question; public sets may ask one question with different options.
        key = _norm(item.question) if file_format == LADDER else (_norm(item.question), item.choices)
        if key in seen:
            if file_format != LADDER:
                skipped["repeated item"] += 1
                continue
            raise InputError(f"{where}: the question repeats line {seen[key]}; questions must be unique")
        id_lines[item.id] = line
        seen[key] = line
        items.append(item)
    if not items:
        counts = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        raise InputError(f"{path}: no usable probe items (skipped: {counts})")
    return ProbeFile(tuple(items), file_format, dict(skipped))


def validate_suite(items: Sequence[ProbeItem], *, position_tolerance: float = 0.03) -> list[str]:
    """Problems of a probe suite, one line each (empty when it is sound), answer-position balance included."""
    if not items:
        return ["the suite has no items"]
    problems: list[str] = []
    ids: set[str] = set()
    questions: dict[str, str] = {}
    positions: Counter[int] = Counter()
    for item in items:
        name = f"item {_show(item.id)}"
        if len(item.choices) != N_CHOICES:
            problems.append(f"{name}: {len(item.choices)} options; expected {N_CHOICES}")
        if any(not choice.strip() for choice in item.choices):
            problems.append(f"{name}: an option is empty")
        repeated = [text for text, count in Counter(_squash(c) for c in item.choices).items() if count > 1]
        if repeated:
            problems.append(f"{name}: option {_show(repeated[0])} appears more than once")
        if not 0 <= item.answer < len(item.choices):
            problems.append(f"{name}: answer {item.answer} is out of range for {len(item.choices)} options")
        elif len(item.choices) == N_CHOICES:
            positions[item.answer] += 1
        if item.id in ids:
            problems.append(f"{name}: the id repeats an earlier item")
        ids.add(item.id)
        question = _norm(item.question)
        if question in questions:
            problems.append(f"{name}: the question repeats item {_show(questions[question])}")
        questions.setdefault(question, item.id)
    total = sum(positions.values())
    for position in range(N_CHOICES):
        share = positions[position] / total if total else 0.0
        if abs(share - 1 / N_CHOICES) > position_tolerance:
            problems.append(
                f"answer position {position} holds {share:.1%} of answers ({positions[position]} of {total}); "
                f"expected {1 / N_CHOICES:.0%} ± {position_tolerance:.0%}"
            )
    return problems


def areas(items: Sequence[ProbeItem]) -> dict[str, int]:
    """The number of items in each area, in the order the areas first appear."""
    return dict(Counter(item.area for item in items))


def _read_records(path: Path) -> list[tuple[int, Any]]:
    """(line number, JSON value) for every record of a JSONL file or a JSON array, read as data files are."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a file, found a folder")
    try:
        records = json_array_records(path)
    except NotAnArray:
        records = json_line_records(path)
    for line, value in records:
        if not isinstance(value, dict):
            raise InputError(f"{path} line {line}: expected a JSON object, found {type(value).__name__}")
    return records


def _shape(record: dict[str, Any]) -> str:
    if "answerKey" in record:
        return ARC
    return LADDER if "area" in record else MMLU


def _parse_ladder(record: dict[str, Any], where: str, line: int) -> ProbeItem:
    item_id, area, question = (_text(record, name, where) for name in ("id", "area", "question"))
    choices = _four_choices(record, where)
    if _repeats(choices):
        raise InputError(f"{where}: 'choices' repeats an option; the {N_CHOICES} options must differ")
    return ProbeItem(item_id, area, question, choices, _answer_index(record, where))


def _parse_mmlu(record: dict[str, Any], where: str, line: int) -> ProbeItem:
    question = _text(record, "question", where)
    choices = _four_choices(record, where)
    answer = _answer_index(record, where)
    area = _text(record, "subject", where) if "subject" in record else MMLU
    raw_id = record.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == ""):
        raise InputError(f"{where}: 'id' must be a non-empty string or an integer")
    if _repeats(choices):
        raise _Skip("repeated option")
    return ProbeItem(str(raw_id) if raw_id is not None else f"{area}-{line}", area, question, choices, answer)


def _parse_arc(record: dict[str, Any], where: str, line: int) -> ProbeItem:
    item_id = _text(record, "id", where)
    question = record.get("question")
    texts: Any
    labels: Any
    if isinstance(question, dict):  # original AI2 JSONL: the stem and the choices sit inside 'question'
        stem = _text(question, "stem", f"{where}: 'question'")
        options = question.get("choices")
        if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
            raise InputError(f"{where}: 'question.choices' must be a list of {{text, label}} objects")
        texts, labels = [o.get("text") for o in options], [o.get("label") for o in options]
    else:
        stem = _text(record, "question", where)
        options = record.get("choices")
        if not isinstance(options, dict):
            raise InputError(f"{where}: 'choices' must be an object with 'text' and 'label' lists")
        texts, labels = options.get("text"), options.get("label")
    if not _strings(texts) or not _strings(labels) or len(texts) != len(labels):
        raise InputError(f"{where}: the choices need equally long lists of non-empty 'text' and 'label' strings")
    key = record.get("answerKey")
    if key not in labels:
        raise InputError(f"{where}: 'answerKey' {_show(str(key))} is not one of the labels {', '.join(labels)}")
    if len(texts) != N_CHOICES:
        raise _Skip("not 4 choices")
    if _repeats(texts):
        raise _Skip("repeated option")
    return ProbeItem(item_id, ARC, stem, tuple(texts), labels.index(key))


_PARSERS = {LADDER: _parse_ladder, ARC: _parse_arc, MMLU: _parse_mmlu}


def _text(record: dict[str, Any], name: str, where: str) -> str:
    if name not in record:
        raise InputError(f"{where}: missing field '{name}'")
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: '{name}' must be a non-empty string, found {_kind(value)}")
    return value


def _four_choices(record: dict[str, Any], where: str) -> tuple[str, ...]:
    if "choices" not in record:
        raise InputError(f"{where}: missing field 'choices'")
    choices = record["choices"]
    if not _strings(choices) or len(choices) != N_CHOICES:
        raise InputError(f"{where}: 'choices' must be a list of {N_CHOICES} non-empty strings")
    return tuple(choices)


def _answer_index(record: dict[str, Any], where: str) -> int:
    if "answer" not in record:
        raise InputError(f"{where}: missing field 'answer'")
    answer = record["answer"]
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < N_CHOICES:
        raise InputError(
            f"{where}: 'answer' must be an integer from 0 to {N_CHOICES - 1} (the index of the correct choice), "
            f"found {_kind(answer)}"
        )
    return answer


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v.strip() for v in value)


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else _show(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return type(value).__name__


def _show(text: str, limit: int = 60) -> str:
    """Quoted and cut short, with newlines escaped, so it fits in a one-line message."""
    return json.dumps(text if len(text) <= limit else text[: limit - 1] + "…", ensure_ascii=False)


def _repeats(choices: Sequence[str]) -> bool:
    return len({_squash(choice) for choice in choices}) != len(choices)


def _squash(text: str) -> str:
    # Options keep their case: "CAT" and "cat" are different answers to a code question.
    return " ".join(text.split())


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())
