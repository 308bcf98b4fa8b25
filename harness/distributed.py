"""The process group a run belongs to: one process, or one rank of a `torchrun` / `accelerate launch`.

A launcher sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/PORT) for each process it starts.
Every rank runs the same program in lockstep: the ranks split each training batch and each
evaluation between them, gradients and outputs are summed or gathered through torch.distributed
(gloo on the CPU, NCCL on GPUs), and rank 0 alone writes the store, artifacts and reports. Outside a
launch every helper here is the identity, so a one-process run pays nothing for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import InputError

T = TypeVar("T")

# A rank that waits this long on a collective has lost its peers (a killed rank is noticed at once
# by gloo and NCCL; this bounds the cases they cannot see, such as a peer stuck in a long forward).
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Ranks:
    """This process's place in its launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the store, the artifacts and the reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process shares the work."""
        return self.world_size > 1


def current_ranks() -> Ranks:
    """What the launcher's environment says (one process when no launcher started this one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    return Ranks(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def threads_per_rank(cores: int) -> int:
    """This rank's share of the machine's cores: ranks on one machine must not oversubscribe them."""
    return max(1, cores // current_ranks().local_world_size)


def join_process_group(device: str) -> Ranks:
    """Join the launch's process group (once): NCCL with one GPU per rank, else gloo (LADDER_DIST_BACKEND overrides).

    A launch that asks accelerate for DeepSpeed is refused: Ladder's training loop shards through FSDP
    (tuning/sharding.py), and a DeepSpeed launch would run as plain DDP while the user believes the
    model is sharded.
    """
    ranks = current_ranks()
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        raise InputError(
            "accelerate launch: DeepSpeed is not supported (Ladder's loop shards weights through FSDP); "
            "launch with examples/accelerate/fsdp.yaml, or see docs/scale.md"
        )
    if not ranks.distributed:
        return ranks
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if device == "cuda":  # one GPU per rank; ranks beyond the GPUs share them (a check on one GPU, with gloo)
            torch.cuda.set_device(ranks.local_rank % torch.cuda.device_count())
        backend = os.environ.get("LADDER_DIST_BACKEND") or ("nccl" if device == "cuda" else "gloo")
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return ranks


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").lower() in ("1", "true")


def weights_sharded() -> bool:
    """Whether this launch shards the trained model's weights, gradients and optimizer state over its ranks (FSDP,
    asked for through `accelerate launch --config_file examples/accelerate/fsdp.yaml`)."""
    return current_ranks().distributed and _flag("ACCELERATE_USE_FSDP")


def _active() -> bool:
    if not current_ranks().distributed:
        return False
    import torch.distributed as dist

    return dist.is_initialized()


def barrier() -> None:
    """Wait until every rank is here."""
    if _active():
        import torch.distributed as dist

        dist.barrier()


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of the items: every world_size-th one, starting at its rank."""
    if not _active():
        return list(items)
    return every_share(items)[current_ranks().rank]


def every_share(items: Sequence[T]) -> list[list[T]]:
    """Each rank's `shard` of the items, in rank order (what every rank will work on, known to all)."""
    world = current_ranks().world_size if _active() else 1
    return [list(items[rank::world]) for rank in range(world)]


def unshard(shares: Sequence[Sequence[T]]) -> list[T]:
    """The items in their original order again, from every rank's `shard` (in rank order)."""
    merged: list[T] = []
    longest = max((len(s) for s in shares), default=0)
    for index in range(longest):
        merged.extend(share[index] for share in shares if index < len(share))
    return merged


def gather(value: T) -> list[T]:
    """Every rank's value, in rank order, on every rank (pickled through the process group)."""
    if not _active():
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * current_ranks().world_size
    dist.all_gather_object(values, value)
    return values


def from_main(value: T) -> T:
    """Rank 0's value, on every rank (what rank 0 decided, the others follow)."""
    if not _active():
        return value
    import torch.distributed as dist

    holder: list[Any] = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]  # type: ignore[no-any-return]


def sum_gradients(parameters: Sequence[Any], extra: Sequence[float] = ()) -> list[float]:
    """Add up the parameters' gradients (and a few numbers) over the ranks, in one all-reduce.

    Each rank has backpropagated its share of a batch, weighted by that share's part of the whole
    batch, so the sum is the whole batch's gradient: the step every rank then takes is the one a
    single process would take. Returns the summed numbers.
    """
    if not _active():
        return list(extra)
    import torch
    import torch.distributed as dist

    for p in parameters:
        if p.grad is None:  # a rank whose share was empty still takes part in the sum
            p.grad = torch.zeros_like(p)
    device = parameters[0].grad.device if parameters else torch.device("cpu")
    flat = torch.cat([p.grad.reshape(-1).float() for p in parameters] + [torch.tensor(list(extra), device=device)])
    dist.all_reduce(flat)
    offset = 0
    for p in parameters:
        count = p.grad.numel()
        p.grad.copy_(flat[offset : offset + count].view_as(p.grad))
        offset += count
    return [float(x) for x in flat[offset:].tolist()]


def sum_numbers(numbers: Sequence[float], device: Any = "cpu") -> list[float]:
    """The numbers added up over the ranks, through a tensor on `device` (NCCL reduces CUDA tensors only)."""
    if not _active():
        return list(numbers)
    import torch
    import torch.distributed as dist

    summed = torch.tensor(list(numbers), dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return [float(x) for x in summed.tolist()]


@contextmanager
def group_lock(path: Path) -> Iterator[None]:
    """A file lock held by rank 0 on behalf of every rank, so work with collectives inside can run under it.

    Ranks that each took the file lock would serialize, and a rank blocked on the lock would never
    reach the collective its peer is waiting in. Outside a launch it is the plain file lock.
    """
    from filelock import FileLock

    with FileLock(str(path) + ".lock") if writes_files() else nullcontext():
        barrier()  # the others go on only once rank 0 holds the lock
        try:
            yield
        finally:
            barrier()  # and rank 0 lets it go only once every rank is done


def writes_files() -> bool:
    """Whether this process writes shared files (artifacts, checkpoints, cards, the store): rank 0 only."""
    return current_ranks().is_main
