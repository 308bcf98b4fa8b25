"""The TensorBoard sink: event files per rung under `.advisor/tensorboard/`, for `tensorboard --logdir`.

Each assessment writes `<rung>/<its creation time>`, so runs of the same rung line up as curves beside
each other: training loss, learning rate and tokens/s per step, the validation metric per epoch, and
the test metrics.
"""

from __future__ import annotations

import re
from pathlib import Path

from advisor.tracking.record import TrackedRun
from advisor.tracking.sinks import TrackingTarget, register_sink

TENSORBOARD_FOLDER = "tensorboard"


@register_sink("tensorboard", library="tensorboard")
class TensorBoardSink:
    """Writes scalars with torch's SummaryWriter (the tensorboard package's event format)."""

    def __init__(self, target: TrackingTarget):
        self.root = target.folder / TENSORBOARD_FOLDER

    def write(self, run: TrackedRun) -> str:
        """One event folder per rung; the line is the command that shows them."""
        from torch.utils.tensorboard import SummaryWriter

        created_at = run.tags.get("ladder.created_at", run.name)
        for rung in run.children:
            writer = SummaryWriter(log_dir=str(folder_of(self.root, rung.name, created_at)))
            try:
                for key, values in rung.histories.items():
                    tag = key.replace(".", "/", 1)
                    for step, value in enumerate(values, start=1):
                        writer.add_scalar(tag, value, global_step=step)
                for key, value in rung.metrics.items():
                    writer.add_scalar(f"test/{key}", value, global_step=0)
            finally:
                writer.close()
        return f"TensorBoard: tensorboard --logdir {self.root.resolve()}"


def folder_of(root: Path, rung: str, created_at: str) -> Path:
    """Where a rung's events of one assessment are."""
    return root / _safe(rung) / _safe(created_at)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"
