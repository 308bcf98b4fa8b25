"""Hostile data files: rows over the size limit, stray quotes, deep nesting; each is one line naming the file
and the line, found while reading (never after holding the whole file), and nothing is merged silently."""

from __future__ import annotations

import json
import logging
import tracemalloc
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from advisor.cli.main import main
from harness.audit.chat import audit_chat_records
from harness.data.loading import FieldMap, load_examples, load_inputs, read_rows
from harness.data.preferences import load_preferences
from harness.data.reading import MAX_ROW_BYTES
from harness.errors import InputError
from harness.retrieval.corpus import load_corpus
from tests.conftest import TICKETS, write_jsonl

BIG = "x" * (MAX_ROW_BYTES + 1)  # one byte over the limit once in a row
LIMIT = "longer than 1 MiB"


def refused(call: object, *args: object) -> str:
    """The one-line message of the InputError the call raises."""
    with pytest.raises(InputError) as caught:
        call(*args)  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    return message


def ticket_rows() -> list[dict[str, str]]:
    return [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]


# ---- the row size limit ------------------------------------------------------------------------------


def test_a_row_just_within_the_limit_is_read(tmp_path: Path) -> None:
    text = "é" * ((MAX_ROW_BYTES - 40) // 2)  # two bytes each: the limit counts UTF-8 bytes, not characters
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": text, "label": "a"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_examples(path, FieldMap(), "train")[0].input == text


def test_a_jsonl_row_over_the_limit_names_the_file_the_line_the_id_and_the_limit(tmp_path: Path) -> None:
    rows = [*ticket_rows()[:2], {"id": "huge", "text": BIG, "label": "billing"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    message = refused(load_examples, path, FieldMap(), "train")
    assert f"{path} line 3 (id 'huge')" in message and LIMIT in message


@pytest.mark.parametrize(("name", "sep"), [("d.csv", ","), ("d.tsv", "\t")])
def test_a_table_row_over_the_limit_is_refused_with_its_line_and_id(tmp_path: Path, name: str, sep: str) -> None:
    path = tmp_path / name
    path.write_text(f"id{sep}text{sep}label\nr1{sep}short{sep}a\nr2{sep}{BIG}{sep}b\n")
    message = refused(load_examples, path, FieldMap(), "train")
    assert f"{path} line 3 (id 'r2')" in message and LIMIT in message


def test_a_json_array_record_over_the_limit_is_refused_with_its_line_and_id(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps([{"id": "a", "text": "t", "label": "x"}, {"id": "b", "text": BIG, "label": "y"}], indent=1)
    )
    message = refused(load_examples, path, FieldMap(), "train")
    assert f"{path} line 7 (id 'b')" in message and LIMIT in message


def test_unlabelled_and_preference_files_have_the_same_limit(tmp_path: Path) -> None:
    inputs = write_jsonl(tmp_path / "u.jsonl", [{"text": "ok"}, {"text": BIG}])
    assert "line 2" in refused(load_inputs, inputs, FieldMap()) and LIMIT in refused(load_inputs, inputs, FieldMap())
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"id": "p1", "prompt": BIG, "chosen": "a", "rejected": "b"}])
    assert f"{pairs} line 1 (id 'p1')" in refused(load_preferences, pairs)


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.json"])
def test_a_huge_row_is_refused_without_reading_it_whole(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    huge = "y" * (40 << 20)
    body = {"d.jsonl": f'{{"text": "{huge}", "label": "a"}}\n', "d.csv": f"text,label\n{huge},a\n"}
    path.write_text(body.get(name, f'[{{"text": "{huge}", "label": "a"}}]'))
    del huge
    tracemalloc.start()
    try:
        message = refused(read_rows, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert LIMIT in message
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB held to refuse a 40 MiB row"


# ---- strict CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the stray quote pairs with a later one: leniently read, rows 2-4 merge into one labelled "technical"
        (
            'text,label\n"he said hi,billing\nnext one,access\nsize 5",technical\nlast,access\n',
            "line 2: a quoted field",
        ),
        ('text,label\n"he said hi,billing\nnext one,access\n"quoted, fine",technical\n', "line 2: a quoted field"),
        ('text,label\nok,billing\n"never closed,access\n', "line 3: a quoted field"),
        ('text,label\n"he said "hi",billing\n', "line 2: not valid CSV"),
        ("text,label\na,b,c\nd,e\n", "line 2: 3 fields, but the header has 2"),
        ("text,label\nalone\n", "line 2: 1 field, but the header has 2"),
        ("text,label,text\na,b,c\n", "line 1: column 'text' appears twice"),
        ("text,label\ra,b\r", "line 1: not valid CSV (a carriage return inside a row"),
    ],
)
def test_a_malformed_csv_row_is_refused_naming_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    message = refused(read_rows, path)
    assert f"{path} {expected}" in message


def test_csv_cells_are_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b'\xef\xbb\xbfid,text,label\n007,he said "hi,NA\n2,"a, b",None\n3,x,\n')
    assert read_rows(path) == [
        {"id": "007", "text": 'he said "hi', "label": "NA"},  # a quote inside a field is text
        {"id": "2", "text": "a, b", "label": "None"},
        {"id": "3", "text": "x", "label": None},  # an empty cell is missing
    ]


def test_advisor_check_refuses_a_stray_quote_in_one_line_and_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [f"{text},{label}" for text, label in TICKETS]
    lines[3] = '"' + lines[3]  # a stray quote that a later one closes
    lines[6] = 'size 5",' + lines[6].split(",")[1]
    (tmp_path / "data.csv").write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    task = {"name": "t", "data": {"path": "data.csv", "fields": {"input": "text", "target": "label"}}}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({**task, "rungs": ["zero_shot"]}), encoding="utf-8")
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(main, ["check", str(tmp_path / "task.yaml")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'data.csv'} line 5: a quoted field runs past the end of the line (a stray quote?); "
        "CSV rows are one line each here, so text with line breaks belongs in JSONL"
    ]
    assert result.stdout == "" and not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---- JSON: nesting, syntax, where --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("deep.jsonl", '{"text": "a", "label": "x"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "line 2"),
        ("deep.json", '[{"text": "a", "label": "x"},\n' + "[" * 100_000 + "]" * 100_000 + "]", "line 2"),
        ("broken.json", '[{"text": "a", "label": "x"},\n{"text": "b", "label"}\n]', "line 2: not valid JSON"),
        ("extra.json", '[{"text": "a", "label": "x"}] []', "line 1: not valid JSON (extra data"),
        ("twice.json", '[{"text": "a", "label": "x"},\n\n{"text": "b", "text": "c"}]', "line 3: key 'text' appears"),
        ("number.json", '[{"text": "a", "label": "x"}, 12]', "line 1: expected a JSON object, found int"),
        ("latin.json", '[{"text": "a"},\n{"text": "caf\u00e9"}]', "line 2: not UTF-8 text"),
    ],
)
def test_bad_json_is_one_line_naming_the_line(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1" if name.startswith("latin") else "utf-8"))
    message = refused(read_rows, path)
    assert f"{path} {expected}" in message


def test_a_json_array_is_read_across_chunks_as_json_reads_it(tmp_path: Path) -> None:
    rows = [{"id": i, "text": "é" * (i * 997 % 50_000), "n": i * 1.5, "label": "ab"[i % 2]} for i in range(300)]
    path = tmp_path / "d.json"
    path.write_text("\ufeff" + json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_rows(path) == rows


# ---- the audit reads the same files ------------------------------------------------------------------


def test_the_chat_audit_refuses_a_huge_line_and_survives_deep_nesting(tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    deep = tmp_path / "deep.jsonl"
    deep.write_text(json.dumps(chat) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    (finding,) = audit_chat_records(deep)
    assert finding.code == "chat_malformed" and finding.row_ids == ("deep.jsonl:2",)
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps(chat) + "\n" + json.dumps({"messages": [{"role": "user", "content": BIG}]}) + "\n")
    assert f"{huge} line 2" in refused(audit_chat_records, huge)


def test_a_jsonl_corpus_is_read_as_data_files_are(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"id": "d1", "text": "one\u2028two three"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [p.text for p in load_corpus(path, 50, 0)] == ["one two three"]  # U+2028 ends no line in JSONL
    path.write_text('{"id": "d1", "text": "ok"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    assert f"{path} line 2: not valid JSON" in refused(load_corpus, path, 50, 0)
    path.write_text(json.dumps({"id": "big", "text": BIG}) + "\n", encoding="utf-8")
    assert f"{path} line 1 (id 'big')" in refused(load_corpus, path, 50, 0)
