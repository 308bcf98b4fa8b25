"""The shipped general-skills probe suite, the probe file format, and the ARC- and MMLU-style records it reads."""

from __future__ import annotations

import contextlib
import io
import json
import operator
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.probes.items import SHIPPED_PROBES, ProbeItem, areas, load_probes, read_probe_file, validate_suite

DATASETS = Path(os.environ.get("LADDER_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
AREAS = (
    "arithmetic",
    "science",
    "geography",
    "common_sense",
    "reading_comprehension",
    "word_meaning",
    "dates_and_units",
    "simple_code",
)
CODE_PROMPT = "What does this Python code print?\n\n"


def probe(number: int, **changes: object) -> dict[str, object]:
    """A sound Ladder probe record, with some fields changed."""
    record: dict[str, object] = {
        "id": f"t-{number}",
        "area": "test",
        "question": f"What is {number} + 1?",
        "choices": [str(number + 1), str(number + 2), str(number + 3), str(number + 4)],
        "answer": 0,
    }
    record.update(changes)
    return record


def write_lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> list[ProbeItem]:
    return load_probes(SHIPPED_PROBES)


def test_the_shipped_suite_loads_and_has_no_problems(shipped: list[ProbeItem]) -> None:
    assert len(shipped) >= 300
    assert validate_suite(shipped) == []
    assert all(len(item.choices) == 4 and 0 <= item.answer < 4 for item in shipped)


def test_the_shipped_suite_covers_eight_areas_with_enough_items_each(shipped: list[ProbeItem]) -> None:
    counts = areas(shipped)
    assert set(AREAS) <= set(counts)
    assert all(counts[area] >= 30 for area in AREAS), counts


def test_answer_positions_are_balanced_overall_and_within_each_area(shipped: list[ProbeItem]) -> None:
    overall = Counter(item.answer for item in shipped)
    assert all(abs(overall[position] / len(shipped) - 0.25) <= 0.03 for position in range(4)), overall
    for area in AREAS:
        answers = [item.answer for item in shipped if item.area == area]
        within = Counter(answers)
        assert all(abs(within[position] / len(answers) - 0.25) <= 0.05 for position in range(4)), (area, within)


def test_every_code_answer_is_what_the_snippet_prints(shipped: list[ProbeItem]) -> None:
    code_items = [item for item in shipped if item.area == "simple_code"]
    assert code_items and all(item.question.startswith(CODE_PROMPT) for item in code_items)
    for item in code_items:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(item.question.removeprefix(CODE_PROMPT), {})  # trusted snippets written for this suite
        outputs = [choice for choice in item.choices if choice == printed.getvalue().strip()]
        assert outputs == [item.choices[item.answer]], (item.id, printed.getvalue())


def test_every_plain_arithmetic_answer_is_computed_right(shipped: list[ProbeItem]) -> None:
    operations = {"+": operator.add, "-": operator.sub, "×": operator.mul, "÷": operator.truediv}
    checked = 0
    for item in shipped:
        match = re.fullmatch(r"What is (\d+) ([-+×÷]) (\d+)\?", item.question)
        if item.area == "arithmetic" and match:
            value = operations[match[2]](int(match[1]), int(match[3]))
            assert float(item.choices[item.answer]) == value, item.id
            checked += 1
    assert checked >= 20


def test_reading_items_carry_their_passage(shipped: list[ProbeItem]) -> None:
    reading = [item for item in shipped if item.area == "reading_comprehension"]
    assert all(item.question.startswith("Passage: ") and "\nQuestion: " in item.question for item in reading)


BAD_LINES = [
    ("not json", [json.dumps(probe(1)), "{not json"], 2, "not valid JSON"),
    ("not an object", [json.dumps(probe(1)), '"just text"'], 2, "expected a JSON object"),
    ("missing answer", [json.dumps({k: v for k, v in probe(1).items() if k != "answer"})], 1, "missing field 'answer'"),
    ("missing question", [json.dumps({k: v for k, v in probe(1).items() if k != "question"})], 1, "'question'"),
    ("id a number", [json.dumps(probe(1, id=7))], 1, "'id' must be a non-empty string"),
    ("empty area", [json.dumps(probe(1, area=" "))], 1, "'area' must be a non-empty string"),
    ("choices text", [json.dumps(probe(1, choices="a b c d"))], 1, "'choices' must be a list of 4 non-empty strings"),
    ("three choices", [json.dumps(probe(1, choices=["a", "b", "c"]))], 1, "list of 4 non-empty strings"),
    ("empty choice", [json.dumps(probe(1, choices=["a", "b", "", "d"]))], 1, "list of 4 non-empty strings"),
    ("number choice", [json.dumps(probe(1, choices=["a", "b", 3, "d"]))], 1, "list of 4 non-empty strings"),
    ("repeated option", [json.dumps(probe(1, choices=["a", "b", "a ", "d"]))], 1, "repeats an option"),
    ("answer 4", [json.dumps(probe(1, answer=4))], 1, "'answer' must be an integer from 0 to 3"),
    ("answer -1", [json.dumps(probe(1, answer=-1))], 1, "'answer' must be an integer from 0 to 3"),
    ("answer text", [json.dumps(probe(1, answer="0"))], 1, "'answer' must be an integer"),
    ("answer true", [json.dumps(probe(1, answer=True))], 1, "'answer' must be an integer"),
    ("repeated id", [json.dumps(probe(1)), json.dumps(probe(2, id="t-1"))], 2, "repeats line 1"),
    (
        "repeated question",
        [json.dumps(probe(1)), json.dumps(probe(2, question="  what IS 1 +  1?"))],
        2,
        "repeats line 1",
    ),
    (
        "two formats",
        [json.dumps(probe(1)), json.dumps({"question": "Q?", "choices": list("abcd"), "answer": 1})],
        2,
        "one record format per file",
    ),
    (
        "mmlu five choices",
        [json.dumps({"question": "Q?", "choices": list("abcde"), "answer": 1})],
        1,
        "4 non-empty strings",
    ),
    (
        "arc unknown key",
        [
            json.dumps(
                {
                    "id": "x",
                    "question": "Q?",
                    "choices": {"text": list("abcd"), "label": list("ABCD")},
                    "answerKey": "E",
                }
            )
        ],
        1,
        "'answerKey' \"E\" is not one of the labels",
    ),
    (
        "arc bad choices",
        [json.dumps({"id": "x", "question": "Q?", "choices": ["a", "b"], "answerKey": "A"})],
        1,
        "'choices' must be an object",
    ),
]


@pytest.mark.parametrize(("lines", "line", "expected"), [case[1:] for case in BAD_LINES], ids=[c[0] for c in BAD_LINES])
def test_a_bad_record_names_the_file_the_line_and_what_was_expected(
    tmp_path: Path, lines: list[str], line: int, expected: str
) -> None:
    path = tmp_path / "probes.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_probes(path)
    message = str(caught.value)
    assert message.startswith(f"{path} line {line}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "the file has no records"), (b"\n  \n", "the file has no records"), (b"[]", "the file has no records")],
)
def test_an_empty_file_is_named(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "probes.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(f"{path}: {expected}")):
        load_probes(path)


def test_a_missing_file_or_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'nope.jsonl'}: file not found")):
        load_probes(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path}: expected a file, found a folder")):
        load_probes(tmp_path)


def test_non_utf8_text_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "probes.jsonl"
    path.write_bytes(json.dumps(probe(1)).encode() + b"\n" + json.dumps(probe(2)).encode().replace(b"2 + 1", b"\xd5"))
    with pytest.raises(InputError, match=re.escape(f"{path} line 2: not UTF-8 text")) as caught:
        load_probes(path)
    assert "\n" not in str(caught.value)


def test_a_bad_record_in_a_json_array_names_the_line_where_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "probes.json"
    path.write_text(json.dumps([probe(1), probe(2, answer=9)], indent=2), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path} line 14: 'answer' must be")):
        load_probes(path)
    path.write_text('[\n  {"id": "a",\n  "area": }\n]', encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path} line 3: not valid JSON")):
        load_probes(path)


def test_ladder_records_load_in_order_as_frozen_items(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "probes.jsonl", probe(1, answer=2), probe(2, area="other"))
    items = load_probes(path)
    assert items == [
        ProbeItem("t-1", "test", "What is 1 + 1?", ("2", "3", "4", "5"), 2),
        ProbeItem("t-2", "other", "What is 2 + 1?", ("3", "4", "5", "6"), 0),
    ]
    assert areas(items) == {"test": 1, "other": 1}
    with pytest.raises(AttributeError):
        items[0].answer = 1  # type: ignore[misc]


def test_validate_suite_reports_each_kind_of_problem() -> None:
    good = [ProbeItem(f"g{i}", "a", f"Question {i}?", ("w", "x", "y", "z"), i % 4) for i in range(8)]
    assert validate_suite(good) == []
    crafted = [
        *good,
        ProbeItem("three", "a", "Three options?", ("x", "y", "z"), 0),
        ProbeItem("repeats", "a", "Repeated option?", ("x", "y", "x", "z"), 1),
        ProbeItem("range", "a", "Out of range?", ("w", "x", "y", "z"), 4),
        ProbeItem("g0", "a", "Same id?", ("w", "x", "y", "z"), 2),
        ProbeItem("copy", "a", "  QUESTION 1? ", ("w", "x", "y", "z"), 3),
    ]
    problems = validate_suite(crafted, position_tolerance=0.5)
    assert problems == [
        'item "three": 3 options; expected 4',
        'item "repeats": option "x" appears more than once',
        'item "range": answer 4 is out of range for 4 options',
        'item "g0": the id repeats an earlier item',
        'item "copy": the question repeats item "g1"',
    ]
    assert validate_suite([ProbeItem("e", "a", "Empty?", ("w", " ", "y", "z"), 0)], position_tolerance=1) == [
        'item "e": an option is empty'
    ]
    assert validate_suite([]) == ["the suite has no items"]


def test_validate_suite_reports_unbalanced_answer_positions() -> None:
    skewed = [ProbeItem(f"s{i}", "a", f"Question {i}?", ("w", "x", "y", "z"), 0 if i < 4 else i % 4) for i in range(16)]
    problems = validate_suite(skewed)  # position 0 holds 7 of 16
    assert problems[0].startswith("answer position 0 holds 43.8% of answers (7 of 16); expected 25% ± 3%")
    assert validate_suite(skewed, position_tolerance=0.2) == []


def test_arc_records_from_the_hugging_face_export_load(tmp_path: Path) -> None:
    def arc(item_id: str, texts: list[str], labels: list[str], key: str) -> dict[str, object]:
        return {"id": item_id, "question": f"{item_id}?", "choices": {"text": texts, "label": labels}, "answerKey": key}

    path = tmp_path / "test.json"
    records = [
        arc("q1", ["sun", "moon", "rock", "tree"], list("ABCD"), "A"),
        arc("q2", ["one", "two", "three", "four"], list("1234"), "3"),
        arc("q3", ["a", "b", "c", "d", "e"], list("ABCDE"), "E"),
        arc("q4", ["a", "b", "c"], list("ABC"), "B"),
        arc("q5", ["a", "b", "a", "c"], list("ABCD"), "B"),
    ]
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    loaded = read_probe_file(path)
    assert loaded.format == "arc"
    assert loaded.items == (
        ProbeItem("q1", "arc", "q1?", ("sun", "moon", "rock", "tree"), 0),
        ProbeItem("q2", "arc", "q2?", ("one", "two", "three", "four"), 2),
    )
    assert loaded.skipped == {"not 4 choices": 2, "repeated option": 1}


def test_arc_records_in_the_original_ai2_jsonl_load(tmp_path: Path) -> None:
    def arc(item_id: str, stem: str, texts: list[str], key: str) -> dict[str, object]:
        options = [{"text": text, "label": label} for text, label in zip(texts, "ABCD", strict=True)]
        return {"id": item_id, "question": {"stem": stem, "choices": options}, "answerKey": key}

    path = write_lines(
        tmp_path / "ARC-Easy-Test.jsonl",
        arc("Mercury_1", "Solid water?", ["ice", "steam", "fog", "dew"], "A"),
        arc("Mercury_2", "Morning water on grass?", ["ice", "steam", "fog", "dew"], "D"),
    )
    assert load_probes(path) == [
        ProbeItem("Mercury_1", "arc", "Solid water?", ("ice", "steam", "fog", "dew"), 0),
        ProbeItem("Mercury_2", "arc", "Morning water on grass?", ("ice", "steam", "fog", "dew"), 3),
    ]


def test_mmlu_records_load_with_subject_as_area(tmp_path: Path) -> None:
    def mmlu(question: str, choices: list[str], answer: int, **extra: object) -> dict[str, object]:
        return {"question": question, "choices": choices, "answer": answer, **extra}

    path = write_lines(
        tmp_path / "mmlu.jsonl",
        mmlu("Which is true?", ["a", "b", "c", "d"], 1, subject="logic", error_type="ok"),
        mmlu("Which is true?", ["e", "f", "g", "h"], 3, subject="logic"),
        mmlu("Which is true?", ["a", "b", "c", "d"], 1, subject="ethics"),
        mmlu("Repeats an option?", ["x", "x", "y", "z"], 0, subject="logic"),
        mmlu("No subject?", ["p", "q", "r", "s"], 2),
    )
    loaded = read_probe_file(path)
    assert loaded.format == "mmlu"
    assert [(item.id, item.area, item.choices[item.answer]) for item in loaded.items] == [
        ("logic-1", "logic", "b"),
        ("logic-2", "logic", "h"),
        ("mmlu-5", "mmlu", "r"),
    ]
    assert loaded.skipped == {"repeated item": 1, "repeated option": 1}


def test_a_public_file_with_nothing_usable_says_why(tmp_path: Path) -> None:
    record = {"id": "q", "question": "Q?", "choices": {"text": list("abc"), "label": list("ABC")}, "answerKey": "A"}
    path = write_lines(tmp_path / "arc.jsonl", record)
    with pytest.raises(InputError, match=re.escape(f"{path}: no usable probe items (skipped: 1 not 4 choices)")):
        load_probes(path)


@pytest.mark.parametrize(
    ("relative", "rows"),
    [
        ("arc_easy/train.json", 2251),
        ("arc_easy/validation.json", 570),
        ("arc_easy/test.json", 2376),
        ("mmlu_redux/mmlu_redux_all.jsonl", 5700),
        ("mmlu_redux/mmlu_redux_ok_only.jsonl", 5330),
    ],
)
def test_the_real_arc_and_mmlu_files_load(relative: str, rows: int) -> None:
    path = DATASETS / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared data sets exist only on the development machine")
    loaded = read_probe_file(path)
    assert len(loaded.items) + sum(loaded.skipped.values()) == rows
    assert len(loaded.items) > 0.98 * rows
    assert all(len(item.choices) == 4 and 0 <= item.answer < 4 for item in loaded.items)
    problems = validate_suite(loaded.items, position_tolerance=1.0)
    # Public sets may ask one question with different options; nothing else may be wrong with what we load.
    assert all("the question repeats item" in problem for problem in problems), problems[:3]
    if relative.startswith("mmlu"):
        assert len(areas(loaded.items)) == 57
