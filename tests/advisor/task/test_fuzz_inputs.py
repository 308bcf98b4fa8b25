"""Fuzzed task and data files: every case is valid (exit 0) or one line naming the problem (exit 2), never a traceback.

Runs through `advisor check`, which validates everything `assess` validates before loading a model.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli.main import main

pytestmark = pytest.mark.slow  # hypothesis-driven or subprocess-heavy: `make test-fast` skips it

FUZZ = settings(max_examples=130, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
VALID_TASK: dict[str, Any] = {
    "name": "fuzz",
    "data": {"path": "data.jsonl", "fields": {"input": "text", "target": "label"}},
    "rungs": ["zero_shot"],
}
FIELDS = ["name", "type", "model", "instruction", "prompt", "data", "labels", "rungs", "seed", "evaluation", "costs",
          "pricing", "forgetting", "constraints", "facts", "decision", "gates", "bogus"]  # fmt: skip


def run_check(task_text: str | bytes, data: str | bytes | None = None, data_name: str = "data.jsonl") -> None:
    """Write the files, run `advisor check`, and hold the outcome to the contract."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        task = root / "task.yaml"
        task.write_bytes(task_text if isinstance(task_text, bytes) else task_text.encode("utf-8", "surrogatepass"))
        if data is not None:
            (root / data_name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        result = CliRunner().invoke(main, ["check", str(task)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback for input {task_text!r} / {data!r}") from result.exception
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr


def good_rows(count: int = 6) -> str:
    labels = ["a", "b"]
    return "".join(json.dumps({"text": f"row {i}", "label": labels[i % 2]}) + "\n" for i in range(count))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_as_a_task_file(text: str) -> None:
    run_check(text, good_rows())


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_a_task_file(raw: bytes) -> None:
    run_check(raw, good_rows())


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6), st.booleans())
def test_task_fields_of_the_wrong_type(fields: dict[str, Any], start_valid: bool) -> None:
    task = {**VALID_TASK, **fields} if start_valid else fields
    run_check(yaml.safe_dump(task, allow_unicode=True), good_rows())


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["zero_shot", "few_shot", "rag", "lora", "qlora", "full", "nope"]),
            st.dictionaries(
                st.sampled_from(["rung", "name", "k", "r", "top_k", "epochs", "mode", "selection", "corpus", "alpha"]),
                json_values,
                max_size=4,
            ),
        ),
        max_size=4,
    )
)
def test_rung_lists_with_odd_options(rungs: list[Any]) -> None:
    run_check(yaml.safe_dump({**VALID_TASK, "rungs": rungs}, allow_unicode=True), good_rows())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(min_value=1, max_value=3000))
def test_deeply_nested_yaml(depth: int) -> None:
    run_check("name: fuzz\ndata: " + "[" * depth + "]" * depth + "\n", good_rows())


@FUZZ
@given(st.lists(json_values, min_size=0, max_size=8))
def test_jsonl_rows_of_any_shape(rows: list[Any]) -> None:
    text = "".join(json.dumps(row, allow_nan=True) + "\n" for row in rows)
    run_check(yaml.safe_dump(VALID_TASK), text)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_as_a_data_file(raw: bytes) -> None:
    run_check(yaml.safe_dump(VALID_TASK), raw)


@FUZZ
@given(
    st.lists(
        st.lists(st.text(alphabet=st.sampled_from('ab ,"\n\r\t\\;é'), max_size=12), min_size=1, max_size=4),
        max_size=8,
    ),
    st.sampled_from(["data.csv", "data.tsv"]),
)
def test_csv_with_broken_quoting(cells: list[list[str]], name: str) -> None:
    separator = "," if name.endswith(".csv") else "\t"
    text = "text" + separator + "label\n" + "\n".join(separator.join(row) for row in cells)
    task = {**VALID_TASK, "data": {"path": name, "fields": {"input": "text", "target": "label"}}}
    run_check(yaml.safe_dump(task), text, name)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["utf-16", "utf-8-sig", "latin-1", "utf-32"]))
def test_huge_values_and_odd_encodings(size: int, encoding: str) -> None:
    rows = "".join(json.dumps({"text": "x" * size, "label": "a" if i % 2 else "b"}) + "\n" for i in range(4))
    run_check(yaml.safe_dump({**VALID_TASK, "name": "é" * min(size, 500)}).encode(encoding), rows)
    run_check(yaml.safe_dump(VALID_TASK), rows.encode(encoding, errors="replace"))
