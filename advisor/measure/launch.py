"""The command that launches `advisor assess` each way Ladder trains: one GPU, DDP, FSDP, FSDP with CPU offload."""

from __future__ import annotations

from dataclasses import dataclass

from harness.estimates.sharding import WAYS, Way
from harness.estimates.training_cost import TrainingOption

TASK = "task.yaml"
# accelerate configs shipped in examples/accelerate (docs/scale.md)
CONFIGS: dict[Way, str] = {
    "DDP": "examples/accelerate/ddp.yaml",
    "FSDP": "examples/accelerate/fsdp.yaml",
    "FSDP + CPU offload": "examples/accelerate/fsdp-offload.yaml",
}


@dataclass(frozen=True)
class Launch:
    """One command and the estimate rows ("method on GPU") it launches."""

    way: Way
    gpus: int
    command: str
    rows: list[str]


def launch_command(way: Way, gpus: int) -> str:
    """`advisor assess task.yaml`, on one GPU or under `accelerate launch` with `gpus` processes."""
    if way == "one GPU":
        return f"advisor assess {TASK}"
    return f"accelerate launch --config_file {CONFIGS[way]} --num_processes {gpus} -m advisor.cli.main assess {TASK}"


def launches(options: list[TrainingOption]) -> list[Launch]:
    """The distinct commands of the rows that fit: one GPU, DDP, FSDP, then FSDP + CPU offload, fewest GPUs first."""
    found: dict[tuple[Way, int], list[str]] = {}
    for option in options:
        if option.way is not None and option.gpus is not None:
            found.setdefault((option.way, option.gpus), []).append(row_name(option))
    ordered = sorted(found.items(), key=lambda item: (WAYS.index(item[0][0]), item[0][1]))
    return [Launch(way, gpus, launch_command(way, gpus), rows) for (way, gpus), rows in ordered]


def row_name(option: TrainingOption) -> str:
    """How the estimate names a row: "lora on H100"."""
    return f"{option.method} on {option.gpu}"
