"""Real `torchrun` launches of the training worker (tests/ddp_training_worker.py), for the scale-out tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import torch

from harness.pause_points import PAUSED_LINE, VARIABLE

ROOT = Path(__file__).resolve().parents[1]
WORKER = str(ROOT / "tests" / "ddp_training_worker.py")


def launch(args: list[str], ranks: int) -> list[str]:
    """The command for `torchrun --nproc_per_node ranks ...` (a module when args start with -m)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *args]


def launch_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment, one thread per rank, the project importable, and `extra` (a launcher's settings)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(extra or {})}


def training(tmp_path: Path, model: Path, name: str, ranks: int, method: str = "lora") -> list[str]:
    """The worker's command: one process, or a launch of `ranks`, training into tmp_path/name (one epoch, 16 steps)."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    args = [WORKER, str(model), str(folder / "ckpt"), str(folder / "weights.safetensors"), method]
    return launch(args, ranks) if ranks > 1 else [sys.executable, *args]


def start(command: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finished(process: subprocess.Popen[bytes], timeout: float = 240) -> str:
    """Its output, once it has ended well."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    return output.decode(errors="replace")


def kill_rank_at_checkpoint(command: list[str], env: Mapping[str, str], folder: Path, checkpoint: int = 2) -> None:
    """Launch `command` training into `folder`; once rank 0 has put its `checkpoint`-th checkpoint in place (and
    waits there), SIGKILL rank 1. The launch must fail, having saved no weights."""
    process = subprocess.Popen(
        command,
        env={**env, VARIABLE: f"checkpoint written*:{checkpoint}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    reached = any(PAUSED_LINE in line for line in process.stdout)  # stops reading at the pause line
    assert reached, f"the launch ended before checkpoint {checkpoint} (exit {process.wait()})"
    os.kill(int((folder / "pid-1").read_text()), signal.SIGKILL)
    process.communicate(timeout=120)  # the surviving rank does not hang on its lost peer
    assert process.returncode != 0
    assert not (folder / "weights.safetensors").exists()


def assert_close(one: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    assert one.keys() == other.keys()
    for name in one:
        torch.testing.assert_close(one[name], other[name], rtol=1e-4, atol=1e-5, msg=name)
