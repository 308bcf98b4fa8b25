"""The task's rungs by name, for a rung that learns from another (a distillation student and its teacher).

A teacher is built exactly as `advisor assess` builds it (its choice on validation included, its
endpoint or other model when it has one) and answers through the result store, so its answers are
computed once and a re-run asks it nothing. A teacher named by a model folder (or id) instead of a
rung is that model answering the task's zero_shot prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from advisor.measure.endpoints import EndpointBinding
from advisor.measure.model_context import OtherModels
from advisor.task.rung_plan import PlannedRung, plan_rungs
from advisor.task.spec import LoadedTask
from harness.data.store import Store
from harness.errors import InputError
from harness.metrics.scoring import scorer_for
from harness.rungs import Predictor, RungConfig, RungContext, get_rung
from harness.runner import run_predictor
from harness.selection import chosen_config
from harness.types import Example, Output


class TaskRungs:
    """Every rung of the task file (whatever `--rungs` selected), built on first use."""

    def __init__(
        self, task: LoadedTask, context: RungContext, store: Store, endpoints: EndpointBinding, models: OtherModels
    ):
        spec = task.spec
        self.source = str(task.path)
        self.planned = {p.name: p for p in plan_rungs(spec.rungs, self.source, None, spec.endpoints)}
        self.context = replace(context, other_rungs=self)
        self.store = store
        self.endpoints = endpoints
        self.models = models
        self._built: dict[str, Predictor] = {}
        self._asking: set[str] = set()

    def fingerprint(self, name: str) -> str:
        """The named rung's fingerprint (it is built, and chooses on validation, when it searches)."""
        if name in self._asking:  # a student whose teacher is, in the end, itself
            raise InputError(f"rungs.{name}: learns from itself (a teacher cannot be its own student's student)")
        self._asking.add(name)
        try:
            return self._predictor(name).fingerprint()
        finally:
            self._asking.discard(name)

    def answers(self, name: str, examples: Sequence[Example]) -> list[Output]:
        """The named rung's answers, through the store."""
        context = self.context
        scorer = scorer_for(context.task_type, context.labels)
        run = run_predictor(self._predictor(name), examples, self.store, scorer, latency_sample=0)
        return [record.output for record in run.records]

    def context_for(self, planned: PlannedRung) -> RungContext:
        """The planned rung's context: answered by its endpoint, its other model, or the task's model."""
        context = self.models.context_for(planned.model, self.context, f"{self.source}: rungs.{planned.name}")
        return self.endpoints.context_for(planned, context)

    def _predictor(self, name: str) -> Predictor:
        if name not in self._built:
            planned = self._planned(name)
            context = self.context_for(planned)
            self._built[name] = planned.type.build(self._chosen(planned, context), context)
        return self._built[name]

    def _planned(self, name: str) -> PlannedRung:
        if name in self.planned:
            return self.planned[name]
        known = ", ".join(self.planned)
        try:
            self.models.check(name, f"{self.source}: teacher '{name}'")
        except InputError:
            raise InputError(
                f"rungs: no rung named '{name}' to learn from, nor a model folder of that name "
                f"(the task's rungs: {known})"
            ) from None
        zero_shot = get_rung("zero_shot")
        return PlannedRung(name, zero_shot, zero_shot.parse({}, f"{self.source}: teacher '{name}'"), model=name)

    def _chosen(self, planned: PlannedRung, context: RungContext) -> RungConfig:
        config, _ = chosen_config(planned.type, planned.config, context, self.store, f"rungs.{planned.name}")
        return config
