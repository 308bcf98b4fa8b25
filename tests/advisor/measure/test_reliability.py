"""Kill anywhere and resume; two runs on one store at once; the same seed gives the same results."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.data.atomic import is_temporary
from tests.conftest import TICKETS, write_jsonl
from tests.pausing import kill_at, without_pauses

pytestmark = pytest.mark.slow  # hypothesis-driven or subprocess-heavy: `make test-fast` skips it

ROOT = Path(__file__).resolve().parents[3]
ADVISOR = [sys.executable, "-c", "from advisor.cli.main import main; main()"]
# where the killed runs stop (harness/pause_points.py: "<event pattern>:<n-th match>"), one per kind of work, in
# the order a run reaches them; the counts are those of each run resuming the one killed before it (a changed
# count or order fails loudly: "never reached")
KILL_POINTS = (
    "outputs stored (batched):4",  # few_shot: one of its two alternatives judged on validation, not the other
    "index built:1",  # rag: passages embedded and the index in place, its lock still held
    "checkpoint written */adapters/*:20",  # lora, in epoch 2: a checkpoint folder in place, `latest` not yet
    "outputs stored (probe):1",  # forgetting: the base model's probe answers stored, the tuned model's not
    "writing */audits/*.json:1",  # the data audit, written to its temporary file and not yet renamed
    "writing */killed.html:1",  # the assessment JSON in place, the HTML report in its temporary file
)


def full_task(folder: Path, model_dir: Path) -> Path:
    """Every kind of work: embedding, an index, few-shot, training with checkpoints, probes, reports."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS * 4)]
    write_jsonl(folder / "train.jsonl", rows[0::2])
    write_jsonl(folder / "test.jsonl", rows[1::2])
    task = folder / "task.yaml"
    task.write_text(
        "name: tickets\n"
        f"model: {model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        "rungs:\n"
        "  - zero_shot\n"
        "  - {rung: few_shot, k: 2, selection: similar}\n"
        "  - {rung: rag, top_k: 2}\n"
        "  - {rung: lora, r: 2, epochs: 4, patience: 4, batch_tokens: 128, max_batch_size: 2, checkpoint_every: 1,\n"
        "     search: false}\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n"
        "forgetting: {max_items: 40}\n",
        encoding="utf-8",
    )
    return task


def command(task: Path, out: Path, *extra: str) -> list[str]:
    return [*ADVISOR, "assess", str(task), "-o", str(out), *extra]


def environment() -> dict[str, str]:
    return {**without_pauses(os.environ), "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}


def results(path: Path) -> dict[str, Any]:
    """What must not change between runs: every answer and every quality metric (not timings or costs)."""
    data = json.loads(path.read_text())
    return {
        rung["name"]: {
            "outputs": [(r["id"], r["output"], r["correct"]) for r in rung["records"]],
            "metrics": {k: round(v["value"], 9) for k, v in rung["metrics"].items()},
            "forgetting": rung["forgetting"] and rung["forgetting"].get("delta"),
        }
        for rung in data["rungs"]
    }


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_temporary(p.name) or p.name.endswith(".partial")]


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run: its results and the plan it made (a killed run reuses it: calibration is no kill
    point, and a fresh store would spend seconds calibrating again)."""

    results: dict[str, Any]
    plan: Path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Reference:
    """One uninterrupted run, shared by the kill test and the same-seed test (each made its own before)."""
    folder = tmp_path_factory.mktemp("reference")
    task = full_task(folder / "reference", tiny_model_dir)
    out = folder / "reference.json"
    done = subprocess.run(command(task, out), env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (plan,) = (task.parent / ".advisor" / "plans").iterdir()
    return Reference(results(out), plan)


def test_killed_at_many_points_every_rerun_ends_identical(
    reference: Reference, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """SIGKILL at one point of each kind of work (outputs, embedding and the index, a training checkpoint,
    probes, the audit, reports); each re-run resumes from what the kill left, and the last one finishes with
    the uninterrupted run's results, a sound store and no temporary files left behind.

    One store, killed at each point in turn: the points lie in the order a run reaches them, so the re-run
    after each kill goes through the killed work before its own kill, later in the run. Each kill is resumed
    as on a store of its own, without redoing all the work before it (six fresh stores took 2-3 times longer).
    """
    task = full_task(tmp_path / "killed", tiny_model_dir)
    out = tmp_path / "killed" / "killed.json"
    plans = task.parent / ".advisor" / "plans"
    plans.mkdir(parents=True)
    shutil.copy(reference.plan, plans / reference.plan.name)
    paused = [kill_at(command(task, out), environment(), point) for point in KILL_POINTS]
    final = subprocess.run(command(task, out), env=environment(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, f"{paused}\n{final.stderr}"
    assert results(out) == reference.results, paused
    store = sqlite3.connect(task.parent / ".advisor" / "store.sqlite")
    assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
    assert leftovers(task.parent) == [], paused


def test_two_runs_on_one_store_at_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    task = full_task(tmp_path / "shared", tiny_model_dir)
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    processes = [
        subprocess.Popen(command(task, out), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for out in outs
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr.decode()
    assert results(outs[0]) == results(outs[1])
    store = sqlite3.connect(task.parent / ".advisor" / "store.sqlite")
    assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def test_the_same_seed_gives_the_same_predictions_and_metrics(
    reference: Reference, tmp_path: Path, tiny_model_dir: Path
) -> None:
    task = full_task(tmp_path / "again", tiny_model_dir)  # a fresh folder: nothing cached
    out = tmp_path / "again.json"
    done = subprocess.run(command(task, out), env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert results(out) == reference.results
    shutil.rmtree(task.parent / ".advisor")


def test_a_pause_point_blocks_at_the_nth_matching_event_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness import pause_points

    assert pause_points.parse_target("") is None  # unset: every point returns at once
    assert pause_points.parse_target("writing */a.json") == pause_points.parse_target("writing */a.json:1")

    class Blocked(Exception):
        pass

    def block(_: float) -> None:
        raise Blocked

    monkeypatch.setattr(pause_points.time, "sleep", block)
    monkeypatch.setattr(pause_points, "_target", pause_points.parse_target("outputs stored (*):2"))
    pause_points.pause_point("index built")
    pause_points.pause_point("outputs stored (batched)")
    with pytest.raises(Blocked):
        pause_points.pause_point("outputs stored (probe)")
    assert capsys.readouterr().err == f"{pause_points.PAUSED_LINE} outputs stored (probe) #2\n"
