"""The pre-flight asks a rung's options model what it needs, so a plug-in rung's files and teacher are checked too.

The rung here is registered from this module, as a plug-in would register it; its factory is never called
(the pre-flight builds nothing).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from harness.rungs import Predictor, RungConfig, RungContext, rung
from tests.conftest import TICKETS, write_jsonl

KIND = "preflight_declared_test_rung"  # a name no other test registers


class DeclaringConfig(RungConfig):
    """A plug-in's options: its own corpus, the task's preference pairs, and a rung it learns from."""

    corpus: str | None = None
    teacher: str | None = None

    def files_needed(self) -> dict[str, str | None]:
        return {"preferences": None, **({"corpus": self.corpus} if self.corpus else {})}

    def learns_from(self) -> str | None:
        return self.teacher


@rung(KIND, config=DeclaringConfig, step=0)
def _never_built(config: DeclaringConfig, context: RungContext) -> Predictor:
    raise AssertionError("the pre-flight built a rung")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Ticket data and a model folder that only the pre-flight accepts (nothing loads it)."""
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(tmp_path / "train.jsonl", rows[0::2])
    write_jsonl(tmp_path / "test.jsonl", rows[1::2])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "model" / "model.safetensors").write_bytes(b"")
    return tmp_path


def check(folder: Path, rungs: str, data: str = "") -> tuple[int, str]:
    path = folder / "task.yaml"
    path.write_text(f"name: t\nmodel: ./model\ndata: {{train: train.jsonl, test: test.jsonl{data}}}\nrungs: {rungs}\n")
    result = CliRunner().invoke(main, ["check", str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0 or len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.exit_code, result.stderr


def test_a_plugin_rungs_missing_corpus_is_refused_at_check(folder: Path) -> None:
    assert check(folder, f"[{{rung: {KIND}}}]")[0] == 0  # it names no corpus: nothing to read
    code, message = check(folder, f"[{{rung: {KIND}, name: mine, corpus: docs/}}]")
    assert code == 2 and str(folder / "task.yaml") in message, message
    assert "rungs.mine.corpus:" in message and "corpus not found" in message, message


def test_the_task_preferences_a_plugin_rung_reads_are_checked_only_when_it_runs(folder: Path) -> None:
    preferences = ", preferences: pairs.jsonl"
    assert check(folder, "[zero_shot]", preferences)[0] == 0  # no planned rung reads them
    code, message = check(folder, f"[zero_shot, {KIND}]", preferences)
    assert code == 2 and f"{folder / 'pairs.jsonl'}: file not found" in message, message
    (folder / "pairs.jsonl").write_text('{"prompt": "a"}\n')
    code, message = check(folder, f"[{KIND}]", preferences)
    assert code == 2 and "pairs.jsonl row 1: no field 'chosen'" in message, message


def test_a_plugin_rungs_teacher_must_be_a_rung_or_a_model(folder: Path) -> None:
    assert check(folder, f"[zero_shot, {{rung: {KIND}, teacher: zero_shot}}]")[0] == 0
    code, message = check(folder, f"[zero_shot, {{rung: {KIND}, name: student, teacher: ./nowhere}}]")
    assert code == 2 and "rungs.student.teacher: no rung named './nowhere' to learn from" in message, message
