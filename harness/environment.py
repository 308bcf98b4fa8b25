"""The machine a run happens on: device, precision, threads, and a description for the report."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from harness.distributed import current_ranks, threads_per_rank


@dataclass(frozen=True)
class Placement:
    """Where and in what precision the model runs."""

    device: str
    dtype: Any
    threads: int

    @property
    def precision(self) -> str:
        """The dtype's short name (float32, bfloat16)."""
        return str(self.dtype).removeprefix("torch.")


def choose_placement(requested: str = "auto") -> Placement:
    """CUDA in bfloat16 when there is a GPU, else the CPU in float32 (bf16 is many times slower there).

    LADDER_THREADS sets the CPU thread count (default: every core, shared among the ranks of a launch
    on this machine; more than that only slows).
    """
    import torch

    threads = int(os.environ.get("LADDER_THREADS", "0")) or threads_per_rank(os.cpu_count() or 1)
    torch.set_num_threads(threads)
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device '{requested}'")
    if requested != "cpu" and torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Placement("cuda", dtype, threads)
    return Placement("cpu", torch.float32, threads)


def describe_hardware(placement: Placement) -> dict[str, Any]:
    """Device, processor, versions: enough to know whether two runs are comparable."""
    import torch

    device = "cpu"
    if placement.device == "cuda":
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    return {
        "device": device,
        "precision": placement.precision,
        "cpu": _cpu_name(),
        "threads": placement.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "ladder": _version("ladder-advisor"),
        "executor": "torchrun" if current_ranks().distributed else "local",
        "processes": current_ranks().world_size,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
