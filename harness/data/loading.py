"""Loading the user's data into Examples and splits, with one clear line for every bad input.

Files are JSONL, JSON (an array of records), CSV or TSV, read strictly with the standard library:
a key twice in one object, a row wider than the header or one over MAX_ROW_BYTES is an error.
Three record shapes are understood: chat records in the OpenAI fine-tuning format (`messages`),
instruction records (`instruction`, optional `input`, `output`), and plain records whose input and
target fields are named in the task (or guessed from common names).
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.data.hashing import file_sha256
from harness.data.json_array import NotAnArray, json_array_records
from harness.data.reading import BOM, json_line_records
from harness.data.tables import table_rows
from harness.errors import InputError
from harness.types import Example, Message

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
INPUT_NAMES = ("text", "input", "sentence", "question", "prompt")
TARGET_NAMES = ("label", "target", "output", "answer", "answers")
CHAT_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class FieldMap:
    """Which columns hold the input, the target and the row id (None: found by name)."""

    input: str | None = None
    target: str | None = None
    id: str | None = None
    context: str | None = None
    gold: str | None = None


@dataclass(frozen=True)
class DataSpec:
    """Where the data is: named split files, or one file to split with a seed."""

    files: dict[str, Path]
    fields: FieldMap = field(default_factory=FieldMap)
    test_size: float = 0.2
    validation_size: float = 0.1  # carved from train when no validation file is given
    seed: int = 0
    stratify: bool = True
    multi_answer: bool = False  # qa: a target may be a list of acceptable answers
    json_target: bool = False  # extraction: the target is a JSON object (or its text)


@dataclass(frozen=True)
class Splits:
    """The examples of each split, and a hash of each file they came from."""

    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]
    file_hashes: dict[str, str]


def load_splits(spec: DataSpec) -> Splits:
    """Read the files named in the spec and return train, validation and test examples."""
    hashes = {name: file_sha256(path) for name, path in spec.files.items() if path.is_file()}
    loaded = {
        name: load_examples(path, spec.fields, split=name, multi_answer=spec.multi_answer, json_target=spec.json_target)
        for name, path in spec.files.items()
    }
    if "all" in loaded:
        train, validation, test = split_examples(
            loaded["all"], spec.test_size, spec.validation_size, spec.seed, spec.stratify
        )
        source = str(spec.files["all"])
        _require_rows(test, f"{source} (test part, test_size={spec.test_size})")
        return Splits(tuple(train), tuple(validation), tuple(test), hashes)
    given_train, given_validation = loaded.get("train", []), loaded.get("validation", [])
    if given_train and not given_validation and spec.validation_size > 0:  # one validation split for every rung
        given_train, given_validation, _ = split_examples(
            given_train, 0.0, spec.validation_size, spec.seed, spec.stratify
        )
    return Splits(tuple(given_train), tuple(given_validation), tuple(loaded["test"]), hashes)


def load_examples(
    path: Path, fields: FieldMap, split: str, multi_answer: bool = False, json_target: bool = False
) -> list[Example]:
    """One file's rows as Examples; a bad row raises InputError naming the file and the row."""
    rows = read_rows(path)
    _require_rows(rows, str(path))
    examples = [
        _with_extras(
            _row_to_example(row, index, path, fields, split, multi_answer, json_target),
            row,
            fields,
            f"{path} row {index}",
        )
        for index, row in enumerate(rows, start=1)
    ]
    seen: dict[str, int] = {}
    for index, example in enumerate(examples, start=1):
        if example.id in seen:
            raise InputError(
                f"{path} row {index}: id '{example.id}' repeats row {seen[example.id]}; ids must be unique"
            )
        seen[example.id] = index
    return examples


def load_inputs(path: Path, fields: FieldMap) -> list[Example]:
    """Unlabelled rows (an input, an optional id, no target) as Examples with an empty target."""
    rows = read_rows(path)
    _require_rows(rows, str(path))
    examples = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        where = f"{path} row {index}"
        row_id = _row_id(row, index, fields, "unlabelled", where)
        if row_id in seen:
            raise InputError(f"{where}: id '{row_id}' repeats row {seen[row_id]}; ids must be unique")
        seen[row_id] = index
        input_field = fields.input or _guess(row, INPUT_NAMES, where, "input", "data.fields.input")
        examples.append(Example(id=row_id, input=_text(row, input_field, where), target=""))
    return examples


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The file's records as dicts, every record with every field of the file (absent ones as None).

    Read strictly and a bounded row at a time (harness/data/reading.py): a malformed or oversized
    row is one InputError naming the file and the line.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported file type '{path.suffix}'; expected .jsonl, .json, .csv or .tsv")
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a file, found a folder")
    if _is_blank(path):
        raise InputError(f"{path}: the file is empty; expected at least one record")
    if fmt == "csv":
        return table_rows(path, "\t" if path.suffix.lower() == ".tsv" else ",")
    if path.suffix.lower() == ".json":
        try:
            records = json_array_records(path)
        except NotAnArray:
            raise InputError(f"{path}: expected a JSON array of objects (one per record)") from None
        if not records:
            raise InputError(f"{path}: the array is empty; expected at least one record")
    else:
        records = json_line_records(path)
    for line, value in records:
        if not isinstance(value, dict):
            raise InputError(f"{path} line {line}: expected a JSON object, found {type(value).__name__}")
    return _same_fields([value for _, value in records])


def _is_blank(path: Path) -> bool:
    """Nothing but white space (and a BOM), read a chunk at a time."""
    with path.open("rb") as handle:
        first = True
        while chunk := handle.read(1 << 16):
            if first and chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
            first = False
            if chunk.strip():
                return False
    return True


def _same_fields(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record with every field of the file, in first-seen order, absent ones as None.

    The rows of a table: a field that another row has reads as missing (None), not as unknown, so
    the messages say "missing or empty".
    """
    fields = dict.fromkeys(key for record in records for key in record)
    return [{name: record.get(name) for name in fields} for record in records]


def _require_rows(rows: Sequence[Any], source: str) -> None:
    if not rows:
        raise InputError(f"{source}: no rows; expected at least one example")


def _with_extras(example: Example, row: dict[str, Any], fields: FieldMap, where: str) -> Example:
    """The optional context passage and gold passage ids, kept in meta."""
    meta = dict(example.meta)
    if fields.context:
        meta["context"] = _text(row, fields.context, where)
    if fields.gold:
        value = row.get(fields.gold)
        gold = [value] if isinstance(value, (str, int)) else value
        if not isinstance(gold, list) or not gold or not all(isinstance(g, (str, int)) for g in gold):
            raise InputError(f"{where}: field '{fields.gold}' must be a passage id or a list of them")
        meta["gold"] = [str(g) for g in gold]
    return replace(example, meta=meta) if meta != example.meta else example


def _row_to_example(
    row: dict[str, Any],
    index: int,
    path: Path,
    fields: FieldMap,
    split: str,
    multi_answer: bool = False,
    json_target: bool = False,
) -> Example:
    where = f"{path} row {index}"
    row_id = _row_id(row, index, fields, split, where)
    if fields.input is None and "messages" in row:
        messages = _chat_messages(row["messages"], where)
        return Example(id=row_id, input=tuple(messages[:-1]), target=messages[-1]["content"], meta={"format": "chat"})
    if fields.input is None and fields.target is None and "instruction" in row and "output" in row:
        instruction = _text(row, "instruction", where)
        extra = row.get("input")
        text = f"{instruction}\n\n{extra}" if isinstance(extra, str) and extra.strip() else instruction
        return Example(id=row_id, input=text, target=_text(row, "output", where), meta={"format": "instruction"})
    input_field = fields.input or _guess(row, INPUT_NAMES, where, "input", "data.fields.input")
    target_field = fields.target or _guess(row, TARGET_NAMES, where, "target", "data.fields.target")
    text = _text(row, input_field, where)
    answers = row.get(target_field)
    if multi_answer and isinstance(answers, list):
        if not answers or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{where}: field '{target_field}' must be an answer or a non-empty list of answers")
        return Example(id=row_id, input=text, target=answers[0], meta={"answers": list(answers)})
    if json_target:
        return Example(id=row_id, input=text, target=_json_text(row, target_field, where))
    return Example(id=row_id, input=text, target=_text(row, target_field, where))


def _json_text(row: dict[str, Any], name: str, where: str) -> str:
    """An extraction target as canonical JSON text: keys sorted, null fields left out.

    Null and absent are the same here because the JSON reader gives every row every key seen in
    the file, filling the ones a row lacks with null.
    """
    if name not in row:
        raise InputError(f"{where}: no field '{name}' (columns: {_columns(row)})")
    value = row[name]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise InputError(f"{where}: field '{name}' must be a JSON object (or its text) for an extraction task")
    return json.dumps(_without_nulls(value), ensure_ascii=False, sort_keys=True)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def _row_id(row: dict[str, Any], index: int, fields: FieldMap, split: str, where: str) -> str:
    name = fields.id or ("id" if "id" in row else None)
    if name is None:
        return f"{split}-{index}"
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        raise InputError(f"{where}: empty id in field '{name}'")
    return str(value)


def _guess(row: dict[str, Any], names: Sequence[str], where: str, what: str, setting: str) -> str:
    for name in names:
        if name in row:
            return name
    columns = _columns(row)
    raise InputError(
        f"{where}: no {what} field; expected one of {', '.join(names)} or name it in {setting} (columns: {columns})"
    )


def _text(row: dict[str, Any], name: str, where: str) -> str:
    if name not in row:
        raise InputError(f"{where}: no field '{name}' (columns: {_columns(row)})")
    value = row[name]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InputError(f"{where}: field '{name}' is missing or empty; expected text")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"{where}: field '{name}' is {type(value).__name__}; expected text")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _chat_messages(value: Any, where: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    messages: list[Message] = []
    for number, turn in enumerate(value, start=1):
        if (
            not isinstance(turn, dict)
            or not isinstance(turn.get("role"), str)
            or not isinstance(turn.get("content"), str)
        ):
            raise InputError(f"{where}: message {number} needs a string 'role' and a string 'content'")
        if turn["role"] not in CHAT_ROLES:
            raise InputError(
                f"{where}: message {number} has role '{turn['role']}'; expected one of {', '.join(CHAT_ROLES)}"
            )
        messages.append({"role": turn["role"], "content": turn["content"]})
    if messages[-1]["role"] != "assistant":
        raise InputError(f"{where}: the last message must be the assistant's answer (the target)")
    if len(messages) < 2:
        raise InputError(f"{where}: a chat record needs at least one message before the assistant's answer")
    return messages


def split_examples(
    examples: Sequence[Example], test_size: float, validation_size: float, seed: int, stratify: bool
) -> tuple[list[Example], list[Example], list[Example]]:
    """Seeded train / validation / test split, stratified by target when asked."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.target if stratify else ""].append(example)
    rng = random.Random(seed)
    train: list[Example] = []
    validation: list[Example] = []
    test: list[Example] = []
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        n_test = round(len(members) * test_size)
        n_val = round(len(members) * validation_size)
        test.extend(members[:n_test])
        validation.extend(members[n_test : n_test + n_val])
        train.extend(members[n_test + n_val :])
    order = {example.id: i for i, example in enumerate(examples)}
    return tuple(sorted(part, key=lambda e: order[e.id]) for part in (train, validation, test))  # type: ignore[return-value]


def _columns(row: dict[str, Any]) -> str:
    """A row's field names for a message; odd names (blank, control characters) shown quoted."""
    names = [name if name.isprintable() and name.strip() == name and name else repr(name) for name in map(str, row)]
    return ", ".join(names) or "none"
