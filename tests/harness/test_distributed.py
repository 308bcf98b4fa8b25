"""Data-parallel training and evaluation under a real `torchrun --nproc_per_node 2` (gloo, CPU).

The launch must give what one process gives: the same weights after the same steps (float
tolerance), the same Assessment (timings aside), and a killed rank must fail the launch cleanly and
leave a checkpoint the next launch resumes from.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.assessments import assert_same_measurements
from tests.pausing import running_beside

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(ROOT / "tests" / "ddp_training_worker.py")


def _launch(args: list[str], ranks: int) -> list[str]:
    """The command for `torchrun --nproc_per_node ranks ...` (a module when args start with -m)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _training(tmp_path: Path, model: Path, name: str, ranks: int) -> list[str]:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    args = [WORKER, str(model), str(folder / "ckpt"), str(folder / "weights.safetensors")]
    return _launch(args, ranks) if ranks > 1 else [sys.executable, *args]


def _train(tmp_path: Path, model: Path, name: str, ranks: int) -> subprocess.Popen[bytes]:
    command = _training(tmp_path, model, name, ranks)
    return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finished(process: subprocess.Popen[bytes], timeout: float = 240) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    return output.decode(errors="replace")


def _close(one: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    assert one.keys() == other.keys()
    for name in one:
        torch.testing.assert_close(one[name], other[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow  # three torchrun launches of two real ranks, one killed: `make test` runs it
def test_two_ranks_train_the_weights_of_one_process_and_resume_after_a_killed_rank(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    single = _training(tmp_path, tiny_model_dir, "single", 1)
    with running_beside(single, _env(), tmp_path / "single.log"):  # the one-process run beside the launch
        launch = _train(tmp_path, tiny_model_dir, "ddp", 2)
        _finished(launch)
    reference = load_file(str(tmp_path / "single" / "weights.safetensors"))
    _close(load_file(str(tmp_path / "ddp" / "weights.safetensors")), reference)
    moved = [float(reference[n].abs().max()) for n in reference if "lora_B" in n]  # LoRA's B starts at zero
    assert moved and min(moved) > 0  # so equal weights mean equal training, not two untouched adapters

    killed = _train(tmp_path, tiny_model_dir, "killed", 2)
    folder = tmp_path / "killed"
    deadline = time.monotonic() + 180
    while not (folder / "ckpt" / "latest").is_file() or not (folder / "pid-1").is_file():
        assert killed.poll() is None and time.monotonic() < deadline, "the launch ended before its first checkpoint"
        time.sleep(0.05)
    os.kill(int((folder / "pid-1").read_text()), signal.SIGKILL)
    killed.communicate(timeout=120)  # the surviving rank does not hang on its lost peer
    assert killed.returncode != 0
    assert not (folder / "weights.safetensors").exists()

    resumed = _train(tmp_path, tiny_model_dir, "killed", 2)
    _finished(resumed)
    with safe_open(str(folder / "weights.safetensors"), "pt") as handle:
        metadata: dict[str, Any] = handle.metadata()
    assert int(metadata["resumed_from"]) > 0
    _close(load_file(str(folder / "weights.safetensors")), reference)


def _assess(task: Path, name: str, ranks: int) -> dict[str, Any]:
    out = task.parent / f"{name}.json"
    args = [
        "-m",
        "advisor.cli.main",
        "assess",
        str(task),
        "--store",
        str(task.parent / name / "store.sqlite"),
        "-o",
        str(out),
    ]
    command = _launch(args, ranks) if ranks > 1 else [sys.executable, *args]
    finished = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=400)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.slow
def test_an_assessment_under_torchrun_equals_the_one_process_assessment(ticket_task: Path) -> None:
    text = (
        ticket_task.read_text(encoding="utf-8")
        .replace(
            "data: {train: train.jsonl, test: test.jsonl}",
            "data: {train: train.jsonl, test: test.jsonl, validation_size: 0.34}",
        )
        .replace(
            "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
            "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n"
            "  - {rung: lora, r: 4, epochs: 2, search: {trials: 2, space: {learning_rate: [1e-3, 3e-3]}}}\n",
        )
    )
    ticket_task.write_text(text, encoding="utf-8")
    one = _assess(ticket_task, "one", 1)
    two = _assess(ticket_task, "two", 2)
    assert two["environment"]["executor"] == "torchrun" and two["environment"]["processes"] == 2
    assert [r["name"] for r in two["rungs"]] == ["zero_shot", "gen", "lora"]
    assert_same_measurements(two, one, ticket_task.parent / "two", ticket_task.parent / "one")


@pytest.mark.parametrize(
    ("variable", "name"), [("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")]
)
def test_a_launch_asking_for_sharded_weights_is_refused_not_run_as_plain_ddp(
    ticket_task: Path, monkeypatch: pytest.MonkeyPatch, variable: str, name: str
) -> None:
    from click.testing import CliRunner

    from advisor.cli.main import main

    monkeypatch.setenv(variable, "true")
    result = CliRunner().invoke(main, ["assess", str(ticket_task)])
    assert result.exit_code == 2
    assert f"{name} is not supported yet" in result.stderr and "Traceback" not in result.stderr
    assert not (ticket_task.parent / ".advisor" / "store.sqlite").exists()
