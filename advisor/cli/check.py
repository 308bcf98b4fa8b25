"""`advisor check`: the pre-flight alone (task file, data, rungs, models, endpoints, metrics), no model loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advisor.measure.preflight import preflight
from advisor.tracking.track import chosen_backends


@dataclass(frozen=True)
class CheckReport:
    """What a valid task holds."""

    name: str
    type: str
    labels: tuple[str, ...]
    rows: dict[str, int]
    rungs: tuple[str, ...]

    def summary(self, path: Path) -> str:
        """One line."""
        labels = f", {len(self.labels)} labels" if self.labels else ""
        rows = " / ".join(f"{count} {split}" for split, count in self.rows.items() if count)
        return f"{path}: ok ({self.type}{labels}; {rows}; rungs: {', '.join(self.rungs)})"


def check_task(path: Path, *, allow_pickle: bool = False) -> CheckReport:
    """Everything `assess` refuses in its input, found without loading a model; bad input raises InputError."""
    checked = preflight(path, allow_pickle=allow_pickle)
    task, planned, splits, labels = checked.task, checked.planned, checked.splits, checked.labels
    chosen_backends(task, None)  # `tracking.to` (assess takes --track instead when it is given)
    rows = {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)}
    return CheckReport(task.spec.name, task.spec.type, labels, rows, tuple(p.name for p in planned))
