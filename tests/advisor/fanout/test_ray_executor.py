"""`advisor assess --executor ray` on a real local Ray instance (started by the command, on this machine).

What Ray computes must be what one process computes; a worker killed mid-task is retried by Ray and
the assessment completes; a re-run finds everything in the store and sends nothing.
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

from tests.assessments import assert_same_measurements

if importlib.util.find_spec("ray") is None:  # found, not imported: the runs import it, collecting need not
    pytest.skip("Ray is the [ray] extra; `make setup` installs it", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[3]


def _command(task: Path, name: str, *extra: str) -> list[str]:
    store = task.parent / name / "store.sqlite"
    out = task.parent / f"{name}.json"
    command = [sys.executable, "-m", "advisor.cli.main", "assess", str(task), "--store", str(store), "-o", str(out)]
    return [*command, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}


def _read(task: Path, name: str) -> dict[str, Any]:
    return json.loads((task.parent / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _kill_one_task(process: subprocess.Popen[str], deadline_s: float) -> bool:
    """SIGKILL the first Ray worker seen running one of our tasks; False if none ran before the command ended."""
    deadline = time.monotonic() + deadline_s
    while process.poll() is None and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "ray::run_piece"], capture_output=True, text=True).stdout.split()
        if found:
            os.kill(int(found[0]), signal.SIGKILL)
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_ray_computes_what_one_process_computes_survives_a_killed_worker_and_reruns_for_free(
    ticket_task: Path,
) -> None:
    text = ticket_task.read_text(encoding="utf-8").replace(
        "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
        "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n"
        "  - {rung: lora, r: 4, epochs: 2, search: false}\n",
    )
    ticket_task.write_text(text, encoding="utf-8")
    local = subprocess.run(_command(ticket_task, "local"), env=_env(), capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr[-3000:]

    on_ray = subprocess.Popen(
        _command(ticket_task, "ray", "--executor", "ray", "--shard-size", "2"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = _kill_one_task(on_ray, deadline_s=240)
    _, errors = on_ray.communicate(timeout=400)
    assert on_ray.returncode == 0, errors[-3000:]
    assert killed, "no Ray task was seen running"
    assert "Traceback" not in errors and "WARNING" not in errors, errors[-3000:]
    assessment = _read(ticket_task, "ray")
    assert assessment["environment"]["executor"] == "ray"
    assert_same_measurements(
        assessment, _read(ticket_task, "local"), ticket_task.parent / "ray", ticket_task.parent / "local"
    )
    lora = next(r for r in assessment["rungs"] if r["name"] == "lora")
    assert lora["training"] is not None and lora["training"]["train_losses"]  # the adapter came back with its card

    again = subprocess.run(
        _command(ticket_task, "ray", "--executor", "ray", "--shard-size", "2"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = _read(ticket_task, "ray")
    assert rerun["environment"]["executor"] == "local"  # nothing was sent: the store answered everything
    assert all(r["computed"] == 0 for r in rerun["rungs"])
