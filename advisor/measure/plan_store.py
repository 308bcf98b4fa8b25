"""Where plans are kept, what they are valid for, and how a real run's measurements compare with them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor.decision.assessment import PlanCheck, RungResult
from advisor.task.spec import TaskSpec
from harness.data.atomic import write_text_atomically
from harness.data.file_names import file_slug
from harness.data.hashing import content_hash

PLAN_VERSION = 3  # 2: per-phase estimates; 3: $ per 1k priced as a measured rung is (hosting, embedded questions)


def plan_key(spec: TaskSpec, file_hashes: dict[str, str], device: str) -> str:
    """What a plan is valid for: the task as written, its data and the machine's device."""
    return content_hash(PLAN_VERSION, spec.model_dump(mode="json"), file_hashes, device)


def plan_path(store_path: Path, task_name: str) -> Path:
    """Where the plan of a task is kept: beside the result store."""
    return store_path.parent / "plans" / f"{file_slug(task_name)}.plan.json"


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
    """Plan against measurement, per rung, for the work this run computed (a rung read from the store has no
    check, and one partly read from it is compared only on what it did compute): seconds and $ per 1k, with the
    ratio."""
    planned = {r["name"]: r for r in plan.get("rungs", [])}
    checks = []
    for result in results:
        estimate = planned.get(result.name)
        phases = computed_phases(result)
        if estimate is None or estimate.get("endpoint") or not phases:
            continue  # a remote rung's time is the endpoint's: the plan could not know it; nothing computed here
        parts = {part for phase in phases for part in _PLANNED_BY_PHASE[phase]}
        # the plan's evaluation answers every test example; this run answered only those not stored
        share = {"evaluation_s": result.computed / max(result.computed + result.reused, 1)}
        planned_s = sum(float(estimate.get(part) or 0.0) * share.get(part, 1.0) for part in parts)
        measured_s = sum(phases.values())
        answered_here = "test" in phases  # else the measured $ come from answers an earlier run timed
        checks.append(
            PlanCheck(
                rung=result.name,
                planned_s=planned_s,
                measured_s=measured_s,
                planned_per_1k=estimate.get("per_1k"),
                measured_per_1k=result.cost.per_1k if result.cost and answered_here else None,
                time_ratio=measured_s / planned_s if planned_s > 0 else None,
                phases=list(phases),
            )
        )
    return checks


def computed_phases(result: RungResult) -> dict[str, float]:
    """The rung's phases the plan estimates, for work this run did: loading a stored adapter is no training,
    and with every test answer read from the store nothing was prepared or answered."""
    phases = {phase: seconds for phase, seconds in result.phases.items() if phase in _PLANNED_BY_PHASE}
    if result.training is not None and not result.training.trained_now:
        phases.pop("training", None)
    if result.computed == 0:
        phases.pop("prepare", None)
        phases.pop("test", None)
    return phases


def load_plan(path: Path, key: str) -> dict[str, Any] | None:
    """The stored plan when it was made for this key (task, data, device), else None."""
    if not path.is_file():
        return None
    plan = json.loads(path.read_text(encoding="utf-8"))
    return plan if plan.get("key") == key else None
