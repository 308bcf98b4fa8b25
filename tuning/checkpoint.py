"""Training checkpoints in safetensors (no pickle): trainable weights, AdamW state, progress.

Each checkpoint is a folder `step-N` written under a temporary name and renamed into place; the
file `latest` (replaced atomically) names the newest. A kill at any moment leaves either the old
checkpoint or the new one, never half of one.

Under a launch that shards the weights (FSDP), each rank writes its own shard of the weights, the
optimizer state and the best weights (`rank-R-of-N.safetensors`) into the folder rank 0 stages, and
rank 0 renames it into place once every rank's file is in: the checkpoint is never gathered whole,
and a launch of the same number of ranks resumes from it.
"""

from __future__ import annotations

import json
import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from harness.data.atomic import staged_folder, write_text_atomically
from harness.distributed import barrier, current_ranks, from_main, writes_files
from harness.errors import InputError
from harness.pause_points import pause_point
from tuning.sharding import local_part, shaped_like

Named = list[tuple[str, torch.Tensor]]


def save_checkpoint(
    folder: Path, trainable: Named, optimizer: torch.optim.Optimizer, state: dict[str, Any], sharded: bool = False
) -> None:
    """Write a new checkpoint and point `latest` at it; older ones are removed afterwards (rank 0, with every rank's
    shard when the weights are `sharded`)."""
    if not sharded and not writes_files():  # every rank holds the same weights and optimizer state
        return
    name = f"step-{state['report']['steps']}-epoch-{state['report']['epochs_run']}"
    best = state.get("best")
    with staged_folder(folder / name) if writes_files() else nullcontext(None) as staged:
        staging = from_main(staged) if sharded else staged  # rank 0's staging folder, on every rank
        assert staging is not None
        if sharded:
            save_file(_own_tensors(trainable, optimizer, best), str(staging / _shard_file(current_ranks().rank)))
            barrier()  # every rank's shard is in before rank 0 renames the folder into place
        else:
            save_file({n: p.detach().contiguous() for n, p in trainable}, str(staging / "trainable.safetensors"))
            save_file(_optimizer_tensors(trainable, optimizer), str(staging / "optimizer.safetensors"))
            if best is not None:
                save_file({n: t.contiguous() for n, t in best.items()}, str(staging / "best.safetensors"))
        if writes_files():
            progress = {k: v for k, v in state.items() if k != "best"}
            (staging / "progress.json").write_text(json.dumps(progress), encoding="utf-8")
    if not writes_files():
        return
    pause_point(f"checkpoint written {folder / name}")  # in place, `latest` still names the one before
    write_text_atomically(folder / "latest", name)
    for old in folder.iterdir():
        if old.is_dir() and old.name != name and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    folder: Path, trainable: Named, optimizer: torch.optim.Optimizer, sharded: bool = False
) -> dict[str, Any] | None:
    """Restore weights and optimizer from the newest checkpoint (this rank's shard of it when `sharded`); None when
    there is none."""
    pointer = folder / "latest"
    if not pointer.is_file():
        return None
    current = folder / pointer.read_text(encoding="utf-8").strip()
    if not (current / "progress.json").is_file():
        return None
    if sharded:
        saved = load_file(str(_own_shard(current)))
        parts = {kind: _strip(saved, kind) for kind in ("weight", "best", "optimizer")}
        weights = {n: shaped_like(p, parts["weight"][n]) for n, p in trainable}
        best = {n: shaped_like(p, parts["best"][n]) for n, p in trainable} if parts["best"] else None
        optimizer_tensors = {
            key: shaped_like(p, value)
            for name, p in trainable
            for key, value in parts["optimizer"].items()
            if key.startswith(f"{name}::")
        } | {"rng": parts["optimizer"]["rng"]}
    else:
        weights = load_file(str(current / "trainable.safetensors"))
        best_file = current / "best.safetensors"
        best = load_file(str(best_file)) if best_file.is_file() else None
        optimizer_tensors = load_file(str(current / "optimizer.safetensors"))
    with torch.no_grad():
        for name, parameter in trainable:
            parameter.copy_(weights[name])
    _restore_optimizer(trainable, optimizer, optimizer_tensors)
    state: dict[str, Any] = json.loads((current / "progress.json").read_text(encoding="utf-8"))
    state["best"] = best
    return state


def _shard_file(rank: int) -> str:
    return f"rank-{rank}-of-{current_ranks().world_size}.safetensors"


def _own_shard(checkpoint: Path) -> Path:
    """This rank's shard file; a checkpoint written by a launch of another size is bad input, named."""
    own = checkpoint / _shard_file(current_ranks().rank)
    if own.is_file():
        return own
    written = sorted(path.name for path in checkpoint.glob("*.safetensors"))
    raise InputError(
        f"{checkpoint}: this training checkpoint was written as {', '.join(written)}, not by a sharded launch of "
        f"{current_ranks().world_size} ranks; launch as it was launched to resume it, or delete "
        f"{checkpoint.parent} to start this training over"
    )


def _own_tensors(
    trainable: Named, optimizer: torch.optim.Optimizer, best: dict[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    """This rank's shards of the trainable weights, of the best weights so far and of the optimizer state, in one
    file: each name prefixed by its kind."""
    kinds = {
        "weight": {n: p.detach() for n, p in trainable},
        "best": best or {},
        "optimizer": _optimizer_tensors(trainable, optimizer),
    }
    return {f"{kind}::{name}": local_part(t).contiguous() for kind, named in kinds.items() for name, t in named.items()}


def _strip(saved: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """The tensors of one kind from `_own_tensors`' file, by their own names."""
    return {key.split("::", 1)[1]: value for key, value in saved.items() if key.startswith(f"{kind}::")}


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
