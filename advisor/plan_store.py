"""Where plans are kept, what they are valid for, and how a real run's measurements compare with them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor.assessment import PlanCheck, RungResult
from advisor.task import TaskSpec
from harness.data.atomic import write_text_atomically
from harness.data.hashing import content_hash

PLAN_VERSION = 2  # 2: per-phase estimates (choosing, training, evaluation, latency, probes)


def plan_key(spec: TaskSpec, file_hashes: dict[str, str], device: str) -> str:
    """What a plan is valid for: the task as written, its data and the machine's device."""
    return content_hash(PLAN_VERSION, spec.model_dump(mode="json"), file_hashes, device)


def plan_path(store_path: Path, task_name: str) -> Path:
    """Where the plan of a task is kept: beside the result store."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_name).strip("._") or "task"
    return store_path.parent / "plans" / f"{safe}.plan.json"


def save_plan(plan: dict[str, Any], path: Path) -> None:
    """Write the plan atomically."""
    write_text_atomically(path, json.dumps(plan, indent=2))


# the plan's estimate of each phase a run reports (RungResult.phases); the plan counts "prepare" (an index,
# a pool of demonstrations embedded) in its evaluation estimate
_PLANNED_BY_PHASE = {
    "choosing": ("choosing_s",),
    "prepare": ("evaluation_s",),
    "training": ("training_s",),
    "test": ("evaluation_s",),
    "latency": ("latency_s",),
    "probes": ("probes_s",),
}


def check_plan(plan: dict[str, Any], results: Sequence[RungResult]) -> list[PlanCheck]:
    """Plan against measurement, per rung, for the work this run computed (a rung read from the store, or a
    tuned rung whose training was, is compared only on what it did compute): seconds and $ per 1k, with the
    ratio."""
    planned = {r["name"]: r for r in plan.get("rungs", [])}
    checks = []
    for result in results:
        estimate = planned.get(result.name)
        if estimate is None or estimate.get("endpoint") or not result.phases:
            continue  # a remote rung's time is the endpoint's: the plan could not know it; nothing computed here
        parts = {part for phase in result.phases for part in _PLANNED_BY_PHASE.get(phase, ())}
        planned_s = sum(float(estimate.get(part) or 0.0) for part in parts)
        measured_s = sum(seconds for phase, seconds in result.phases.items() if phase in _PLANNED_BY_PHASE)
        measured_cost = result.cost.per_1k if result.cost else None
        checks.append(
            PlanCheck(
                rung=result.name,
                planned_s=planned_s,
                measured_s=measured_s,
                planned_per_1k=estimate.get("per_1k"),
                measured_per_1k=measured_cost,
                time_ratio=measured_s / planned_s if planned_s > 0 else None,
                phases=[phase for phase in result.phases if phase in _PLANNED_BY_PHASE],
            )
        )
    return checks


def load_plan(path: Path, key: str) -> dict[str, Any] | None:
    """The stored plan when it was made for this key (task, data, device), else None."""
    if not path.is_file():
        return None
    plan = json.loads(path.read_text(encoding="utf-8"))
    return plan if plan.get("key") == key else None
