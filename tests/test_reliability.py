"""Kill anywhere and resume; two runs on one store at once; the same seed gives the same results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.data.atomic import is_temporary
from tests.conftest import TICKETS, write_jsonl

pytestmark = pytest.mark.slow  # hypothesis-driven or subprocess-heavy: `make test-fast` skips it

ROOT = Path(__file__).resolve().parents[1]
ADVISOR = [sys.executable, "-c", "from advisor.cli import main; main()"]
# kill points, spread evenly over an uninterrupted run's working time: 6 (was 10, about 34 s each) keeps
# the CI run within its 30 minutes beside the torchrun and Ray tests; they are still spread over the run
KILLS = 6


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
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}


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
    """An uninterrupted run: its results, its start-up time (until the model loads) and its total time."""

    results: dict[str, Any]
    startup_s: float
    total_s: float


@pytest.fixture
def reference(tmp_path: Path, tiny_model_dir: Path) -> Reference:
    task = full_task(tmp_path / "reference", tiny_model_dir)
    out = tmp_path / "reference.json"
    started = time.perf_counter()
    process = subprocess.Popen(
        command(task, out), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    startup = None
    for line in process.stderr:
        if startup is None and "loading model" in line:
            startup = time.perf_counter() - started
    assert process.wait(timeout=600) == 0
    return Reference(results(out), startup or 0.0, time.perf_counter() - started)


def test_killed_at_many_points_every_rerun_ends_identical(
    reference: Reference, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """SIGKILL at KILLS points spread over the run (outputs, embedding, the index, training checkpoints, probes,
    audit, reports); after each, a re-run finishes with the uninterrupted run's results, a sound store and
    no temporary files left behind."""
    task = full_task(tmp_path / "killed", tiny_model_dir)
    out = tmp_path / "killed.json"
    work = reference.total_s - reference.startup_s
    landed = []
    for point in range(KILLS):
        shutil.rmtree(task.parent / ".advisor", ignore_errors=True)
        out.unlink(missing_ok=True)
        delay = reference.startup_s + work * (point + 0.5) / KILLS
        process = subprocess.Popen(
            command(task, out), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate()
        stages = [line.strip() for line in stderr.splitlines() if line.strip()]
        where = stages[-1][:50] if stages else "start-up"
        landed.append(f"{delay:5.1f} s, exit {process.returncode}: after '{where}'")
        final = subprocess.run(command(task, out), env=environment(), capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
        assert results(out) == reference.results, landed[-1]
        store = sqlite3.connect(task.parent / ".advisor" / "store.sqlite")
        assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store.close()
        assert leftovers(task.parent) == [] and leftovers(tmp_path) == [], landed[-1]
    print("kill points:", *landed, sep="\n  ")
    assert sum("exit -9" in point for point in landed) >= KILLS - 1  # the run was killed, not finished


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
