"""Training checkpoints in safetensors (no pickle): trainable weights, AdamW state, progress.

Each checkpoint is a folder `step-N` written under a temporary name and renamed into place; the
file `latest` (replaced atomically) names the newest. A kill at any moment leaves either the old
checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from harness.data.atomic import staged_folder, write_text_atomically
from harness.distributed import writes_files
from harness.pause_points import pause_point

Named = list[tuple[str, torch.Tensor]]


def save_checkpoint(folder: Path, trainable: Named, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Write a new checkpoint and point `latest` at it; older ones are removed afterwards (rank 0 only)."""
    if not writes_files():  # every rank holds the same weights and optimizer state
        return
    name = f"step-{state['report']['steps']}-epoch-{state['report']['epochs_run']}"
    with staged_folder(folder / name) as staging:
        save_file({n: p.detach().contiguous() for n, p in trainable}, str(staging / "trainable.safetensors"))
        save_file(_optimizer_tensors(trainable, optimizer), str(staging / "optimizer.safetensors"))
        best = state.get("best")
        if best is not None:
            save_file({n: t.contiguous() for n, t in best.items()}, str(staging / "best.safetensors"))
        progress = {k: v for k, v in state.items() if k != "best"}
        (staging / "progress.json").write_text(json.dumps(progress), encoding="utf-8")
    pause_point(f"checkpoint written {folder / name}")  # in place, `latest` still names the one before
    write_text_atomically(folder / "latest", name)
    for old in folder.iterdir():
        if old.is_dir() and old.name != name and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, trainable: Named, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Restore weights and optimizer from the newest checkpoint; None when there is none."""
    pointer = folder / "latest"
    if not pointer.is_file():
        return None
    current = folder / pointer.read_text(encoding="utf-8").strip()
    if not (current / "progress.json").is_file():
        return None
    weights = load_file(str(current / "trainable.safetensors"))
    with torch.no_grad():
        for name, parameter in trainable:
            parameter.copy_(weights[name])
    _restore_optimizer(trainable, optimizer, load_file(str(current / "optimizer.safetensors")))
    state: dict[str, Any] = json.loads((current / "progress.json").read_text(encoding="utf-8"))
    best_file = current / "best.safetensors"
    state["best"] = load_file(str(best_file)) if best_file.is_file() else None
    return state


def _optimizer_tensors(trainable: Named, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {"rng": torch.get_rng_state()}
    for name, parameter in trainable:
        for key, value in optimizer.state.get(parameter, {}).items():
            tensors[f"{name}::{key}"] = value.detach().contiguous() if torch.is_tensor(value) else torch.tensor(value)
    return tensors


def _restore_optimizer(trainable: Named, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng"])
    for name, parameter in trainable:
        state = {key.split("::", 1)[1]: value for key, value in tensors.items() if key.startswith(f"{name}::")}
        if state:
            optimizer.state[parameter] = state
