"""A prompting rung answered by another local model (`model:` on the rung), and a distillation teacher
given as a model folder: each answers with its own weights and tokenizer, and says so in the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from tests.conftest import build_tiny_llama


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: Any) -> Path:
    """A second tiny llama (other weights, same tokenizer): the "larger" model of these tests."""
    folder = tmp_path_factory.mktemp("other-llama")
    build_tiny_llama(len(tiny_tokenizer), seed=7).save_pretrained(folder, safe_serialization=True)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def with_rungs(task: Path, rungs: str) -> None:
    text = task.read_text()
    task.write_text(text[: text.index("rungs:")] + "rungs:\n" + rungs + text[text.index("evaluation:") :])


def test_a_rung_on_another_model_answers_with_it_and_the_report_says_where(
    ticket_task: Path, other_model_dir: Path
) -> None:
    with_rungs(ticket_task, f"  - zero_shot\n  - {{rung: zero_shot, name: other, model: {other_model_dir}}}\n")
    out = ticket_task.parent / "run.json"
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rungs = {r["name"]: r for r in json.loads(out.read_text())["rungs"]}
    assert rungs["zero_shot"]["model"] is None and rungs["other"]["model"] == str(other_model_dir)
    assert rungs["other"]["computed"] == rungs["zero_shot"]["computed"] > 0  # not the task model's stored answers
    assert f"local ({other_model_dir})" in (ticket_task.parent / "run.md").read_text()


def test_a_teacher_given_as_a_model_folder_labels_the_students_data(ticket_task: Path, other_model_dir: Path) -> None:
    student = f"{{rung: distill, teacher: {other_model_dir}, r: 2, epochs: 1, batch_tokens: 256, max_batch_size: 4}}"
    with_rungs(ticket_task, f"  - zero_shot\n  - {student}\n")
    ticket_task.write_text(ticket_task.read_text() + "forgetting: {max_items: 10}\n")  # probes are not the point
    out = ticket_task.parent / "run.json"
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(out)])
    assert result.exit_code == 0, result.output
    distill = json.loads(out.read_text())["rungs"][1]
    facts = distill["training"]["distillation"]
    assert facts["teacher"] == str(other_model_dir) and facts["inputs"] == 6 and facts["targets"].startswith("soft")


@pytest.mark.parametrize(
    ("rung", "expected"),
    [
        ("{rung: zero_shot, name: other, model: ./no-such-model}", "rungs.other.model: model './no-such-model'"),
        ("{rung: lora, model: ./elsewhere}", "only prompting rungs (zero_shot, few_shot, rag) can answer with another"),
        ("{rung: distill, teacher: ./no-such-model}", "no rung named './no-such-model' to learn from, nor a model"),
    ],
)
def test_a_model_that_cannot_answer_a_rung_is_one_line(ticket_task: Path, rung: str, expected: str) -> None:
    with_rungs(ticket_task, f"  - {rung}\n")
    result = CliRunner().invoke(main, ["assess", str(ticket_task)])
    assert result.exit_code == 2 and expected in result.output, result.output
    assert "Traceback" not in result.output
