"""The command line as a user meets it: results, JSON, resumed runs, and bad input as one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from tests.conftest import AssessedTickets, write_jsonl

ROOT = Path(__file__).resolve().parents[3]
# a fresh interpreter, so sys.modules says what the run itself imported
WARM_RUN = """
import json, sys
from advisor.cli.main import main
main(["assess", sys.argv[1], "--out", sys.argv[2]], standalone_mode=False)
with open(sys.argv[3], "w") as modules:
    json.dump(sorted(sys.modules), modules)
"""
# what loading a model or a tokenizer, reading data through `datasets`, or preparing a tuned or retrieval
# rung imports; a warm run needs none of them (torch itself is still imported: every rung registers at
# start, and the tuned rungs' modules import it at the top)
HEAVY = ("transformers", "tokenizers", "datasets", "pyarrow", "pandas", "peft", "optuna", "faiss",
         "sentence_transformers")  # fmt: skip


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_assess_prints_the_table_and_writes_the_assessment(assessed_tickets: AssessedTickets) -> None:
    stdout = assessed_tickets.stdout  # `advisor assess TASK --out run.json`, run once for the session
    assert "zero_shot" in stdout and "Accuracy" in stdout and "p95" in stdout
    data = assessed_tickets.data()
    assert data["schema_version"] == 1
    assert [r["name"] for r in data["rungs"]] == ["zero_shot", "gen"]
    first = data["rungs"][0]
    assert (
        first["metrics"]["accuracy"]["ci_low"]
        <= first["metrics"]["accuracy"]["value"]
        <= first["metrics"]["accuracy"]["ci_high"]
    )
    assert len(first["records"]) == 6 and first["tokens"]["prompt_mean"] > 0 and first["latency"]["sample_size"] == 2
    assert set(data["task"]["labels"]) == {"access", "billing", "technical"}


def test_a_second_run_reuses_every_output_without_loading_the_model(
    assessed_tickets: AssessedTickets, warm_ticket_task: Path, tmp_path: Path
) -> None:
    warm = invoke("assess", str(warm_ticket_task), "--out", str(tmp_path / "b.json"))  # the store of the cold run
    assert "loading model" in assessed_tickets.stderr and "loading model" not in warm.stderr  # type: ignore[attr-defined]
    first, second = assessed_tickets.data(), json.loads((tmp_path / "b.json").read_text())
    assert all(r["computed"] == 0 for r in second["rungs"])
    assert [r["records"] for r in first["rungs"]] == [r["records"] for r in second["rungs"]]


def test_a_warm_run_loads_no_model_no_tokenizer_and_no_heavy_library(warm_ticket_task: Path, tmp_path: Path) -> None:
    warm, modules = tmp_path / "warm.json", tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", WARM_RUN, str(warm_ticket_task), str(warm), str(modules)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert all(r["computed"] == 0 for r in json.loads(warm.read_text())["rungs"])
    imported = set(json.loads(modules.read_text()))
    assert [name for name in HEAVY if name in imported] == []


def test_rungs_and_limit_select_part_of_the_work(ticket_task: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert invoke("assess", str(ticket_task), "--rungs", "gen", "--limit", "2", "--out", str(out)).exit_code == 0
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["rungs"]] == ["gen"] and data["task"]["n_test"] == 2


@pytest.mark.slow
def test_init_writes_a_task_that_assess_accepts(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "starter"
    assert invoke("init", str(folder)).exit_code == 0
    task = folder / "task.yaml"
    task.write_text(task.read_text().replace("model: smollm2-135m-instruct", f"model: {tiny_model_dir}"))
    result = invoke("assess", str(task), "--out", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["task"]["n_test"] == 12
    advice, majority = data["recommendation"], data["task"]["majority_label"]
    share = sum(r["target"] == majority for r in data["rungs"][0]["records"]) / 12
    above = [r["name"] for r in data["rungs"] if r["metrics"][r["primary_metric"]]["value"] > share]
    assert advice["rung"] in above if above else advice["summary"].startswith("Nothing ships"), advice


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    invoke("init", str(tmp_path))
    result = invoke("init", str(tmp_path))
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert invoke("init", str(tmp_path), "--force").exit_code == 0


def task_with(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD_ROWS = [{"text": "charged twice", "label": "billing"}, {"text": "app crashes", "label": "technical"}]


@pytest.mark.parametrize(
    ("body", "files", "expected"),
    [
        ("name: t\ndata: {test: missing.jsonl}\n", {}, "missing.jsonl: file not found"),
        ("name: t\ndata: [unclosed\n", {}, "line 2: not valid YAML"),
        ("name: t\ndata: {test: d.jsonl}\ncolour: red\n", {"d.jsonl": GOOD_ROWS}, "colour: unknown field"),
        (
            "name: t\ndata: {test: d.jsonl}\nseed: many\n",
            {"d.jsonl": GOOD_ROWS},
            "seed: Input should be a valid integer",
        ),
        ("name: t\ndata: {test: d.jsonl, fields: {input: 3}}\n", {"d.jsonl": GOOD_ROWS}, "data.fields.input"),
        ("data: {test: d.jsonl}\n", {"d.jsonl": GOOD_ROWS}, "name: required field is missing"),
        ("name: t\ndata: {train: a.jsonl}\n", {}, "data: expected 'path' (one file to split) or a 'test' file"),
        ("name: t\ndata: {test: empty.jsonl}\n", {"empty.jsonl": []}, "empty.jsonl: the file is empty"),
        (
            "name: t\ndata: {test: d.jsonl}\nlabels: [billing]\n",
            {"d.jsonl": GOOD_ROWS},
            "d.jsonl row 2 (id test-2): label 'technical' is not one of the labels (billing)",
        ),
        (
            "name: t\ndata: {test: d.jsonl}\n",
            {"d.jsonl": [{"text": "a", "label": "x"}, {"body": "b", "label": "y"}]},
            "d.jsonl row 2: field 'text' is missing or empty",
        ),
        ("name: t\ndata: {test: d.jsonl}\nrungs: [zero_shoot]\n", {"d.jsonl": GOOD_ROWS}, "did you mean zero_shot"),
        (
            "name: t\ndata: {test: d.jsonl}\nrungs: [{rung: zero_shot, mode: guess}]\n",
            {"d.jsonl": GOOD_ROWS},
            "rungs[0].mode: Input should be 'auto', 'score' or 'generate'",
        ),
        (
            "name: t\ndata: {test: d.jsonl}\nprompt: {template: 'no slot'}\n",
            {"d.jsonl": GOOD_ROWS},
            "must contain {input}",
        ),
        (
            "name: t\ntype: poetry\ndata: {test: d.jsonl}\n",
            {"d.jsonl": GOOD_ROWS},
            "task type 'poetry' is not supported yet; supported: classification",
        ),
        (
            "name: t\ndata: {test: d.jsonl}\nmodel: ./no-such-model\n",
            {"d.jsonl": GOOD_ROWS},
            "no-such-model': folder not found",
        ),
        ("- just\n- a list\n", {}, "expected a mapping of task fields"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path, body: str, files: dict[str, list], expected: str
) -> None:
    for name, rows in files.items():
        write_jsonl(tmp_path / name, rows)
    result = invoke("assess", str(task_with(tmp_path, body)))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_data_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_bytes('{"text": "caf\u00e9", "label": "x"}\n'.encode("cp1252"))
    result = invoke("assess", str(task_with(tmp_path, "name: t\ndata: {test: d.jsonl}\n")))
    assert result.exit_code == 2 and "d.jsonl line 1: not UTF-8" in result.stderr


def test_a_task_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    result = invoke("assess", str(path))
    assert result.exit_code == 2 and "not UTF-8" in result.stderr


def test_unknown_rung_selection_lists_the_task_rungs(ticket_task: Path) -> None:
    result = invoke("assess", str(ticket_task), "--rungs", "lora")
    assert result.exit_code == 2 and "lora not in the task (it has: zero_shot, gen)" in result.stderr


@pytest.mark.parametrize("command", [[], ["assess"], ["init"]])
def test_help_reads_well(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: advisor" in result.output and len(result.output.splitlines()) > 5
