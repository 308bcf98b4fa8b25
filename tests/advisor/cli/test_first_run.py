"""A new user's first runs: output that is never cropped, markup that prints as itself, options that cannot
silently run everything, and files that stay where they belong."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from advisor.cli.main import main
from advisor.measure.plan_store import plan_path
from advisor.report.terminal import PIPE_WIDTH, print_results
from harness.data.file_names import file_slug
from harness.wording import agree
from tests.advisor.report.test_reports import hostile_assessment
from tests.conftest import TICKETS, write_jsonl

# labels rich would read as markup: a closing tag with no opening one, and a tag it would swallow
MARKUP_LABELS = {"billing": "[/red]", "technical": "[positive]", "access": "access"}
BOX = re.compile(r"[│┃╭╮╰╯─━┏┓┗┛┡┩┠┨╇╈┳┻╋┼┬┴├┤└┘┌┐═║]")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def words(text: str) -> str:
    """The text with box drawing and line breaks gone: what a reader sees, whatever the wrapping."""
    return " ".join(BOX.sub(" ", text).split())


@pytest.fixture(scope="module")
def markup_task(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A task whose labels are rich markup, assessed once (later runs read the store)."""
    folder = tmp_path_factory.mktemp("markup")
    rows = [{"id": f"r{i}", "text": t, "label": MARKUP_LABELS[label]} for i, (t, label) in enumerate(TICKETS)]
    write_jsonl(folder / "train.jsonl", rows[0::2])
    write_jsonl(folder / "test.jsonl", rows[1::2])
    (folder / "task.yaml").write_text(
        "name: tickets\n"
        f"model: {tiny_model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        "rungs: [zero_shot, {rung: zero_shot, name: '[bold]loud[/bold]', calibrate: off}]\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n",
        encoding="utf-8",
    )
    result = invoke("assess", str(folder))  # the folder `advisor init` made is enough
    assert result.exit_code == 0, result.output
    return folder / "task.yaml"


def written(task: Path) -> dict[str, Any]:
    return dict(json.loads((task.parent / ".advisor" / "tickets.assessment.json").read_text()))


@pytest.mark.parametrize("columns", [None, "80"])
def test_markup_in_labels_and_rung_names_prints_as_itself(markup_task: Path, columns: str | None) -> None:
    """Through a pipe (CliRunner is not a terminal), at PIPE_WIDTH or at COLUMNS: every word printed."""
    result = CliRunner().invoke(main, ["assess", str(markup_task)], env={"COLUMNS": columns}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    drawn = [line for line in result.stdout.splitlines() if not line.startswith("Assessment written to")]
    assert max(len(line) for line in drawn) <= int(columns or PIPE_WIDTH)  # paths alone are never broken
    assert "[/red]" in result.stdout and "[bold]loud[/bold]" in result.stdout
    assessment = written(markup_task)
    assert {"[/red]", "[positive]"} <= set(assessment["task"]["labels"])
    advice = assessment["recommendation"]
    shown = words(result.stdout)
    for line in [advice["summary"], *advice["reasons"], *advice["rejected"].values(), *advice["warnings"]]:
        assert words(line) in shown, line


@pytest.mark.parametrize("width", [80, 100, 200])
def test_nothing_we_print_is_cropped_at_any_width(width: int) -> None:
    assessment = hostile_assessment()
    advice = assessment.recommendation
    assert advice is not None
    advice.reasons.append("a long reason " * 30 + "that ends here")
    assessment.rungs[1].name = "lora_with_a_rather_long_name"
    console = Console(file=io.StringIO(), width=width)
    print_results(assessment, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for line in [advice.summary, *advice.reasons, *advice.rejected.values()]:
        assert words(line) in words(text), line
    for cell in ("lora_with_a_rather_long_name", "0.400 [", "$0.0100"):
        assert cell in text


def test_the_assessment_is_saved_before_anything_is_drawn(
    markup_task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("drawing failed")

    monkeypatch.setattr("advisor.report.terminal.print_results", broken)
    out = tmp_path / "kept.json"
    with pytest.raises(RuntimeError):
        invoke("assess", str(markup_task), "-o", str(out))
    assert json.loads(out.read_text())["task"]["name"] == "tickets"


def test_json_prints_the_assessment_alone_on_stdout(markup_task: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    shutil.copy(markup_task.parent / ".advisor" / "tickets.assessment.json", baseline)
    result = invoke("assess", str(markup_task), "--json", "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rungs"][0]["name"] == "zero_shot"  # the gate's table went to stderr
    assert "Gate:" in result.stderr


def test_fresh_computes_everything_again_and_leaves_the_store_alone(markup_task: Path) -> None:
    store = markup_task.parent / ".advisor" / "store.sqlite"
    before = store.read_bytes()
    result = invoke("assess", str(markup_task), "--fresh", "--rungs", "zero_shot", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert written(markup_task)["rungs"][0]["computed"] == 2
    assert store.read_bytes() == before
    fresh = [p for p in store.parent.glob("fresh-*") if p.is_dir()]
    assert len(fresh) == 1 and (fresh[0] / "store.sqlite").is_file()
    shutil.rmtree(fresh[0])


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_an_empty_rung_list_is_an_error_not_every_rung(markup_task: Path, value: str) -> None:
    result = invoke("assess", str(markup_task), "--rungs", value)
    assert result.exit_code == 2
    assert "--rungs: expected comma-separated rung names" in result.stderr
    assert "Traceback" not in result.output


def test_train_names_its_own_option(markup_task: Path) -> None:
    result = invoke("train", str(markup_task), "--rung", "nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --rung: nope not in the task") and "--rungs" not in result.stderr


def test_an_output_file_in_a_missing_folder_creates_nothing(markup_task: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "deeper" / "report.html"
    result = invoke("report", str(markup_task.parent / ".advisor" / "tickets.assessment.json"), "-o", str(target))
    assert result.exit_code == 2
    assert "the folder" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "missing").exists()


def test_a_folder_without_a_task_file_is_one_clear_error(tmp_path: Path) -> None:
    result = invoke("check", str(tmp_path))
    assert result.exit_code == 2 and "no task.yaml" in result.output


def test_init_quotes_the_next_command_for_the_shell(tmp_path: Path) -> None:
    folder = tmp_path / "my task's folder"
    result = invoke("init", str(folder))
    assert result.exit_code == 0, result.output
    hint = result.stdout.strip().splitlines()[-1]
    assert hint == f"next: advisor assess '{tmp_path}/my task'\"'\"'s folder/task.yaml'"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("../../../x", "x"),
        ("/etc/passwd", "etc-passwd"),
        ("a\nb", "a-b"),
        ("..", "task"),
        ("", "task"),
        ("Support Tickets", "support-tickets"),
        ("C:\\temp\\x", "c-temp-x"),
        ("é" * 300, "e" * 80),
    ],
)
def test_every_file_named_after_the_task_stays_in_its_folder(name: str, slug: str, tmp_path: Path) -> None:
    assert file_slug(name) == slug
    path = plan_path(tmp_path / "store.sqlite", name)
    assert path.parent == tmp_path / "plans"


def test_counts_agree_with_their_nouns() -> None:
    assert agree(1, "rows have") == "1 row has" and agree(2, "rows have") == "2 rows have"
    assert agree(0, "classes") == "0 classes" and agree(1, "errors") == "1 error"


def test_every_example_and_each_rungs_answer_is_logged_as_json_lines(markup_task: Path) -> None:
    assessment = written(markup_task)
    path = markup_task.parent / ".advisor" / "tickets.assessment.samples.jsonl"
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = assessment["rungs"][0]["records"]
    assert [s["id"] for s in samples] == [r["id"] for r in records]
    assert {s["target"] for s in samples} <= set(assessment["task"]["labels"])
    for sample in samples:
        assert set(sample["rungs"]) == {r["name"] for r in assessment["rungs"]}
        assert sample["disagree"] == (len({a["correct"] for a in sample["rungs"].values()}) > 1)
