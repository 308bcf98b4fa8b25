"""Hours and dollars of each method on each GPU type, placed the way it fits (harness/estimates/sharding.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.estimates.model_shapes import ModelShape
from harness.estimates.sharding import Placement, Way, place
from harness.estimates.tuning_memory import HEADROOM, GpuSpec, MemoryBreakdown, fits, training_time


@dataclass(frozen=True)
class TrainingOption:
    """One method on one GPU type: which way it runs, on how many GPUs, how long, and what it costs."""

    method: str
    gpu: str
    fits_one: bool  # one GPU holds a whole replica
    way: Way | None  # None when no way fits one machine
    gpus: int | None
    per_gpu_gb: float | None
    cpu_ram_gb: float  # offloaded state in CPU RAM; 0 without offload
    hours: float | None  # wall-clock on `gpus` GPUs; None without datasheet peaks
    cost_usd: float | None
    usd_per_million_tokens: float | None
    # No way fits only because Ladder's engine holds the whole base beside the step: how the step alone would run
    without_engine: Placement | None = None


def estimate_costs(
    shape: ModelShape,
    breakdowns: Mapping[str, MemoryBreakdown],
    gpus: Sequence[GpuSpec],
    tokens: int,
    headroom: float = HEADROOM,
    num_gpus: int | None = None,
    base_gb: float = 0.0,
) -> list[TrainingOption]:
    """Dollars per method and GPU: GPU-hours x per_hour, and per 1M training tokens (`base_gb`: the base Ladder's
    engine holds on every GPU beside the step, harness/estimates/sharding.py).

    N GPUs (DDP or FSDP) are assumed to scale perfectly (one node with a fast interconnect): they finish
    in 1/N of the time, so the GPU-hours, and the dollars, do not depend on N. CPU offload's transfers
    and CPU optimizer step are not counted.
    """
    options = []
    for method, breakdown in breakdowns.items():
        for gpu in gpus:
            placed: Placement | None = place(breakdown, shape, gpu.memory_gb, num_gpus, headroom, base_gb)
            alone = place(breakdown, shape, gpu.memory_gb, num_gpus, headroom) if placed is None else None
            hours = cost = per_million = None
            if placed is not None and gpu.tflops is not None:
                seconds = training_time(
                    shape,
                    breakdown.method,
                    tokens,
                    gpu.tflops,
                    trainable_params=breakdown.trainable_params if breakdown.method != "full" else 0,
                    gradient_checkpointing=breakdown.gradient_checkpointing,
                )
                hours = seconds / 3600 / placed.gpus
                cost = seconds / 3600 * gpu.per_hour
                per_million = cost / tokens * 1e6
            options.append(
                TrainingOption(
                    method=method,
                    gpu=gpu.name,
                    fits_one=fits(breakdown, gpu.memory_gb, headroom),
                    way=placed.way if placed else None,
                    gpus=placed.gpus if placed else None,
                    per_gpu_gb=placed.per_gpu_gb if placed else None,
                    cpu_ram_gb=placed.cpu_ram_gb if placed else 0.0,
                    hours=hours,
                    cost_usd=cost,
                    usd_per_million_tokens=per_million,
                    without_engine=alone,
                )
            )
    return options
