"""Loading data files: the record shapes understood, the splits, and one clear line per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.loading import DataSpec, FieldMap, load_examples, load_splits, read_rows, split_examples
from harness.errors import InputError
from tests.conftest import write_jsonl


def test_plain_records_with_guessed_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"id": "a", "text": "hello", "label": "x"}, {"id": "b", "text": "bye", "label": 1}]
    )
    examples = load_examples(path, FieldMap(), "train")
    assert [(e.id, e.input, e.target) for e in examples] == [("a", "hello", "x"), ("b", "bye", "1")]


def test_named_fields_and_generated_ids(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"body": "hello", "cls": "x"}])
    (example,) = load_examples(path, FieldMap(input="body", target="cls"), "test")
    assert (example.id, example.input, example.target) == ("test-1", "hello", "x")


def test_chat_records_in_the_openai_fine_tuning_format(tmp_path: Path) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "greeting"},
    ]
    (example,) = load_examples(write_jsonl(tmp_path / "c.jsonl", [{"messages": messages}]), FieldMap(), "train")
    assert example.input == tuple(messages[:2]) and example.target == "greeting"


def test_instruction_records(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Add", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ]
    first, second = load_examples(write_jsonl(tmp_path / "i.jsonl", rows), FieldMap(), "train")
    assert (first.input, first.target) == ("Add\n\n2 and 3", "5")
    assert second.input == "Say hi"


def test_json_lines_rows_share_the_file_fields_and_keep_values_as_written(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"id": 7, "text": "line\u2028separator", "label": "x"}\r\n\n{"text": "b", "label": ["y"], "extra": 1.5}\n',
        encoding="utf-8",
    )
    assert read_rows(path) == [
        {"id": 7, "text": "line\u2028separator", "label": "x", "extra": None},
        {"id": None, "text": "b", "label": ["y"], "extra": 1.5},
    ]
    assert [list(row) for row in read_rows(path)] == [["id", "text", "label", "extra"]] * 2


def test_csv_tsv_and_json_array(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text('text,label\n"a, with comma",x\nb,y\n', encoding="utf-8")
    (tmp_path / "d.tsv").write_text("label\ttext\nx\ta\n", encoding="utf-8")
    (tmp_path / "d.json").write_text(json.dumps([{"text": "a", "label": "x"}]), encoding="utf-8")
    assert [e.input for e in load_examples(tmp_path / "d.csv", FieldMap(), "t")] == ["a, with comma", "b"]
    assert [e.target for e in load_examples(tmp_path / "d.tsv", FieldMap(), "t")] == ["x"]
    assert [e.input for e in load_examples(tmp_path / "d.json", FieldMap(), "t")] == ["a"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.jsonl", None, "file not found"),
        ("empty.jsonl", b"\n\n", "the file is empty"),
        ("latin.jsonl", '{"text": "caf\u00e9", "label": "x"}\n'.encode("latin-1"), "line 1: not UTF-8"),
        ("broken.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "label"\n', "line 2: not valid JSON"),
        ("list.jsonl", b"[1, 2]\n", "line 1: expected a JSON object"),
        ("twice.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "text": "c"}\n', "line 2: key 'text' appears"),
        ("twice.json", b'[{"text": "a", "label": "x", "label": "y"}]', "key 'label' appears twice"),
        (
            "noinput.jsonl",
            b'{"text": "a", "label": "x"}\n{"body": "b", "label": "y"}\n',
            "row 2: field 'text' is missing or empty",
        ),
        ("notarget.jsonl", b'{"text": "a"}\n', "row 1: no target field"),
        ("nulltarget.jsonl", b'{"text": "a", "label": null}\n', "field 'label' is missing or empty"),
        (
            "dupid.jsonl",
            b'{"id": 1, "text": "a", "label": "x"}\n{"id": 1, "text": "b", "label": "x"}\n',
            "row 2: id '1' repeats row 1",
        ),
        ("badchat.jsonl", b'{"messages": [{"role": "user", "content": "hi"}]}\n', "last message must be the assistant"),
        (
            "role.jsonl",
            b'{"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "x"}]}\n',
            "role 'bot'",
        ),
        ("data.parquet", b"x", "unsupported file type"),
        ("obj.json", b'{"data": []}', "expected a JSON array of objects"),
    ],
)
def test_bad_input_names_the_file_and_the_problem(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_examples(path, FieldMap(), "train")
    message = str(caught.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_one_file_is_split_with_the_seed_and_stratified(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"t{i}", "label": "ab"[i % 2]} for i in range(40)]
    spec = DataSpec(
        files={"all": write_jsonl(tmp_path / "all.jsonl", rows)}, test_size=0.25, validation_size=0.1, seed=3
    )
    first, again = load_splits(spec), load_splits(spec)
    assert [e.id for e in first.test] == [e.id for e in again.test]
    assert len(first.test) == 10 and len(first.validation) == 4 and len(first.train) == 26
    assert sorted(e.target for e in first.test) == ["a"] * 5 + ["b"] * 5
    ids = {e.id for part in (first.train, first.validation, first.test) for e in part}
    assert len(ids) == 40
    other = load_splits(DataSpec(files=spec.files, test_size=0.25, validation_size=0.1, seed=4))
    assert [e.id for e in other.test] != [e.id for e in first.test]


def test_a_split_that_leaves_no_test_rows_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", [{"text": "a", "label": "x"}])
    with pytest.raises(InputError, match="no rows"):
        load_splits(DataSpec(files={"all": path}, test_size=0.2))


def test_split_keeps_the_file_order_inside_each_part() -> None:
    from harness.types import Example

    examples = [Example(str(i), f"t{i}", "ab"[i % 3 == 0]) for i in range(30)]
    train, _, test = split_examples(examples, 0.3, 0.0, seed=1, stratify=True)
    assert [int(e.id) for e in test] == sorted(int(e.id) for e in test)
    assert [int(e.id) for e in train] == sorted(int(e.id) for e in train)
