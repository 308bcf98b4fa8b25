"""`advisor check`: validate a task file, its data and its rungs without loading any model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advisor.rung_plan import plan_rungs
from advisor.task import load_task
from advisor.task_data import load_task_data
from harness.label_scoring import LabelScoring, check_calibrate


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


def check_task(path: Path) -> CheckReport:
    """Everything `assess` validates before it loads a model; bad input raises InputError (one line)."""
    task = load_task(path)
    planned = plan_rungs(task.spec.rungs, str(task.path), None, task.spec.endpoints)
    splits, labels = load_task_data(task)
    for p in planned:  # what the rung's factory would refuse, said before any model loads
        if isinstance(p.config, LabelScoring):
            check_calibrate(p.config, labels, p.name)
    rows = {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)}
    return CheckReport(task.spec.name, task.spec.type, labels, rows, tuple(p.name for p in planned))
