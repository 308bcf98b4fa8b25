"""Where plans are kept, what they are valid for, and how a real run's measurements compare with them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, ValidationError, model_serializer

from advisor.decision.assessment import PlanCheck, RungResult
from advisor.task.spec import TaskSpec
from harness.data.atomic import write_text_atomically
from harness.data.file_names import file_slug
from harness.data.hashing import content_hash

PLAN_VERSION = 3  # 2: per-phase estimates; 3: $ per 1k priced as a measured rung is (hosting, embedded questions)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanRates(_Model):
    """This machine's rates, calibrated on the task's own prompts (the task's model)."""

    scoring_tokens_per_s: float | None  # batched scoring (labelled tasks)
    single_request_s_per_token: float  # a request alone, per prompt token
    generation_s_per_token: float  # decoding, per generated token
    embedding_s_per_text: float  # 0 when no rung embeds
    training_tokens_per_s: dict[str, float]  # per tuning method (a rung's kind)


class RungEstimate(_Model):
    """One rung's estimate: seconds per phase, its prompt's tokens, its $ per 1k requests and its training $."""

    name: str
    endpoint: str | None = None  # a remote rung: the endpoint that answers it (a local rung's JSON has no key)
    prompt_tokens: float
    choosing_s: float  # every alternative answering the validation split
    training_s: float | None  # a tuned rung: its search and training (the judgements on validation included)
    evaluation_s: float  # the test split (a remote rung: only what is done here, embedding)
    latency_s: float  # the single-request latency sample
    probes_s: float | None  # a tuned rung: the forgetting probes (the base model's answers once)
    total_s: float
    p50_s: float | None  # a request alone (unknown for a remote rung)
    per_1k: float | None
    training_cost: float | None

    def phase_seconds(self) -> dict[str, float | None]:
        """The seconds of each planned part, by field name (the values of _PLANNED_BY_PHASE)."""
        return {
            "choosing_s": self.choosing_s,
            "evaluation_s": self.evaluation_s,
            "training_s": self.training_s,
            "latency_s": self.latency_s,
            "probes_s": self.probes_s,
        }

    @model_serializer(mode="wrap")
    def _local_without_endpoint(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.endpoint is None:
            del data["endpoint"]
        return data


class Plan(_Model):
    """`advisor assess --plan`: the calibrated rates and every planned rung's estimate, kept beside the task."""

    version: int  # PLAN_VERSION when it was made
    key: str  # plan_key: what it is valid for
    rates: PlanRates
    calibration_s: float
    rungs: list[RungEstimate]

    def total_s(self) -> float:
        """Seconds the whole plan is expected to take here."""
        return float(sum(rung.total_s for rung in self.rungs))


def plan_key(spec: TaskSpec, file_hashes: dict[str, str], device: str) -> str:
    """What a plan is valid for: the task as written, its data and the machine's device."""
    return content_hash(PLAN_VERSION, spec.model_dump(mode="json"), file_hashes, device)


def plan_path(store_path: Path, task_name: str) -> Path:
    """Where the plan of a task is kept: beside the result store."""
    return store_path.parent / "plans" / f"{file_slug(task_name)}.plan.json"


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan atomically."""
    write_text_atomically(path, plan_json(plan))


def plan_json(plan: Plan) -> str:
    """The plan as its file holds it."""
    return json.dumps(plan.model_dump(), indent=2)


# the plan's estimate of each phase a run reports (RungResult.phases); the plan counts "prepare" (an index,
# a pool of demonstrations embedded) in its evaluation estimate
_PLANNED_BY_PHASE = {
    "choosing": "choosing_s",
    "prepare": "evaluation_s",
    "training": "training_s",
    "test": "evaluation_s",
    "latency": "latency_s",
    "probes": "probes_s",
}


def check_plan(plan: Plan, results: Sequence[RungResult]) -> list[PlanCheck]:
    """Plan against measurement, per rung, for the work this run computed (a rung read from the store has no
    check, and one partly read from it is compared only on what it did compute): seconds and $ per 1k, with the
    ratio."""
    planned = {r.name: r for r in plan.rungs}
    checks = []
    for result in results:
        estimate = planned.get(result.name)
        phases = computed_phases(result)
        if estimate is None or estimate.endpoint or not phases:
            continue  # a remote rung's time is the endpoint's: the plan could not know it; nothing computed here
        parts = {_PLANNED_BY_PHASE[phase] for phase in phases}  # prepare and test share evaluation_s
        # the plan's evaluation answers every test example; this run answered only those not stored
        share = {"evaluation_s": result.computed / max(result.computed + result.reused, 1)}
        planned_s = sum((_phase_estimate(estimate, part) or 0.0) * share.get(part, 1.0) for part in parts)
        measured_s = sum(phases.values())
        answered_here = "test" in phases  # else the measured $ come from answers an earlier run timed
        checks.append(
            PlanCheck(
                rung=result.name,
                planned_s=planned_s,
                measured_s=measured_s,
                planned_per_1k=estimate.per_1k,
                measured_per_1k=result.cost.per_1k if result.cost and answered_here else None,
                time_ratio=measured_s / planned_s if planned_s > 0 else None,
                phases=list(phases),
            )
        )
    return checks


def _phase_estimate(estimate: RungEstimate, part: str) -> float | None:
    """The estimate's seconds of one part (a field named in _PLANNED_BY_PHASE)."""
    return estimate.phase_seconds()[part]


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


def load_plan(path: Path, key: str) -> Plan | None:
    """The stored plan when it was made for this key (task, data, device, plan version), else None (a plan that
    does not read as one is made again)."""
    if not path.is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(stored, dict) or stored.get("key") != key or stored.get("version") != PLAN_VERSION:
        return None
    try:
        return Plan.model_validate(stored)
    except ValidationError:
        return None
