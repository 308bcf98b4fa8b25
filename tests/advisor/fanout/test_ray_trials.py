"""A tuned rung's search with `--executor ray`: the driver runs the study, its trials train on two Ray workers.

The search chooses what one process chooses (the same trials, pruned the same way); a worker killed in the
middle of the chosen trial is retried by Ray and resumes from the trial's last checkpoint; a re-run sends nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.pause_points import FILE_VARIABLE, VARIABLE
from tests.assessments import assert_same_measurements

if importlib.util.find_spec("ray") is None:  # found, not imported: the runs import it, collecting need not
    pytest.skip("Ray is the [ray] extra; `make setup` installs it", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[3]
# four learning rates, one trial each (a grid); two trials finish and two are pruned at their first judgement.
# One row per step and a checkpoint after every step, so a trial is killed with steps behind it.
SEARCHED = (
    "rungs:\n  - {rung: lora, r: 4, epochs: 2, batch_tokens: 64, max_batch_size: 1, checkpoint_every: 1, "
    "search: {trials: 4, relative_budget: 4, space: {learning_rate: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]}}}\n"
    "forgetting: {enabled: false}\n"
)


def _arguments(task: Path, name: str) -> list[str]:
    store = task.parent.parent / name / "store.sqlite"  # outside the task folder: the tasks need not carry it
    return ["assess", str(task), "--store", str(store), "-o", str(task.parent.parent / f"{name}.json")]


def _assess_here(task: Path, name: str, *extra: str) -> None:
    """`advisor assess` in this process (no Ray started: the one-process reference, or a re-run sending nothing)."""
    from click.testing import CliRunner

    from advisor.cli.main import main

    result = CliRunner().invoke(main, [*_arguments(task, name), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.stderr, result.stderr[-3000:]


def _assess(task: Path, name: str, *extra: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`advisor assess` as a process of its own: the Ray run, which starts Ray and its workers."""
    command = [sys.executable, "-m", "advisor.cli.main", *_arguments(task, name), *extra]
    run_env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", **env}
    return subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(process: subprocess.Popen[str]) -> str:
    _, errors = process.communicate(timeout=400)
    assert process.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors and "WARNING" not in errors, errors[-3000:]
    return errors


def _read(task: Path, name: str) -> dict[str, Any]:
    return json.loads((task.parent.parent / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _search(assessment: dict[str, Any]) -> dict[str, Any]:
    rung = next(r for r in assessment["rungs"] if r["name"] == "lora")
    return rung["training"]["search"]  # type: ignore[no-any-return]


def _kill_when_paused(process: subprocess.Popen[str], marker: Path) -> str:
    """SIGKILL the worker that paused at the pause point (it wrote its pid into `marker`); the event it named."""
    while process.poll() is None:
        text = marker.read_text(encoding="utf-8") if marker.is_file() else ""
        if text.endswith("\n"):  # written whole
            pid, event = text.strip().split(" ", 1)
            os.kill(int(pid), signal.SIGKILL)
            return event
        time.sleep(0.1)  # polling for the file: the kill waits for the pause, not for a guessed moment
    return ""


@pytest.mark.slow
def test_trials_on_two_workers_choose_what_one_process_chooses_and_a_killed_trial_resumes(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from tests.conftest import write_ticket_task

    (tmp_path / "task").mkdir()
    task = write_ticket_task(tmp_path / "task", tiny_model_dir)
    text = task.read_text(encoding="utf-8").replace("test: test.jsonl}", "test: test.jsonl, validation_size: 0.34}")
    task.write_text(text[: text.index("rungs:")] + SEARCHED, encoding="utf-8")
    _assess_here(task, "local")
    local = _search(_read(task, "local"))
    chosen = local["chosen"]
    assert {t["state"] for t in local["trials"]} == {"complete", "pruned"}  # the pruner decided something

    marker = tmp_path / "paused"
    pause = {VARIABLE: f"checkpoint written */ray-work/trials/*/{chosen}/*:2", FILE_VARIABLE: str(marker)}
    on_ray = _assess(task, "ray", "--executor", "ray", env=pause)
    event = _kill_when_paused(on_ray, marker)
    _finished(on_ray)
    assert event, "the chosen trial never reached its second checkpoint on a worker"
    assessment = _read(task, "ray")
    assert assessment["environment"]["executor"] == "ray" and assessment["environment"]["processes"] == 2
    searched = _search(assessment)
    assert searched["chosen"] == chosen
    assert [(t["number"], t["params"], t["state"]) for t in searched["trials"]] == [
        (t["number"], t["params"], t["state"]) for t in local["trials"]
    ]
    assert_same_measurements(assessment, _read(task, "local"), tmp_path / "ray", tmp_path / "local")
    lora = next(r for r in assessment["rungs"] if r["name"] == "lora")
    card = json.loads((Path(lora["training"]["artifact"]) / "card.json").read_text(encoding="utf-8"))
    training = card["training"]
    assert training["resumed_from_step"] > 0  # the retried task went on from the checkpoint before the kill
    assert len(training["train_losses"]) == training["steps"]  # and trained no step twice
    assert not (tmp_path / "ray" / "ray-work").exists()  # the tasks' work folders went with their results

    _assess_here(task, "ray", "--executor", "ray")
    rerun = _read(task, "ray")
    assert rerun["environment"]["executor"] == "local"  # nothing was sent: the store answered everything
    assert all(r["computed"] == 0 for r in rerun["rungs"])
