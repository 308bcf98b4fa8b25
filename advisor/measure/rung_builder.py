"""The task's bound rungs: the ONE place a planned rung becomes a predictor.

Every caller that answers with a rung (assess, a distillation teacher, `--plan`, `train`, `advisor
serve` and its pool, label suggestions, `advisor prompt`, a Ray piece) builds it here, so it is built
the same way everywhere: in its own context (its endpoint or other local model when it names one),
with the task's other rungs within reach (a student's teacher), and with its choice on validation
applied (`search:`, `calibrate: auto`). The choice is read back from the result store; it is computed
there only when the store is open for computing: a store opened `stored_only` (serving, `--plan`, the
Ray driver's question) raises `ChoiceNotStored` instead, a `NotStored` naming the rung and the command
that makes the choice.

A teacher is built exactly as any other rung and answers through the store, so its answers are
computed once and a re-run asks it nothing. A teacher named by a model folder (or id) instead of a
rung is that model answering the task's zero_shot prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from advisor.measure.endpoints import EndpointBinding, resolve_endpoints
from advisor.measure.prepare import PreparedRun, ProgressHooks, QuietHooks
from advisor.task.rung_plan import PlannedRung, plan_rungs
from harness.data.store import NotStored, Store
from harness.errors import InputError
from harness.inference.engine import Engine
from harness.inference.observed import PromptObserver
from harness.metrics.scoring import scorer_for
from harness.rungs import Predictor, RungConfig, RungContext, TunedModel, get_rung
from harness.runner import run_predictor
from harness.selection import Selection, choice_space, chosen_config
from harness.types import Example, Output


class ChoiceNotStored(NotStored):
    """A rung's choice on validation is not in a store opened for stored answers only."""


@dataclass(frozen=True)
class BuiltRung:
    """A planned rung built: the configuration that answers, the choice that made it, the predictor."""

    planned: PlannedRung
    config: RungConfig  # as written, or its choice on validation when it chooses
    selection: Selection | None  # the alternatives tried on validation (None: nothing to choose)
    predictor: Predictor
    context: RungContext  # the rung's own context (its endpoint or other model; the task's other rungs)


class BoundRungs:
    """The task's rungs (every rung of the task file, whatever `--rungs` selected) bound to one store."""

    def __init__(self, run: PreparedRun, store: Store, endpoints: EndpointBinding, hooks: ProgressHooks | None = None):
        self.run = run
        self.source = str(run.task.path)
        spec = run.task.spec
        self.planned = {p.name: p for p in plan_rungs(spec.rungs, self.source, None, spec.endpoints)}
        self.context = replace(run.context, other_rungs=self)
        self.store = store
        self.endpoints = endpoints
        self.hooks: ProgressHooks = hooks or QuietHooks()
        self._chosen: dict[str, tuple[RungConfig, Selection | None]] = {}
        self._teachers: dict[str, Predictor] = {}
        self._asking: set[str] = set()

    @classmethod
    def open(
        cls,
        run: PreparedRun,
        *,
        stored_only: bool = False,
        on_first_compute: Callable[[], None] | None = None,
        hooks: ProgressHooks | None = None,
    ) -> BoundRungs:
        """The run's rungs over its result store (`stored_only`: computing nothing); `close()` them after."""
        store = Store(run.store_path, stored_only=stored_only, on_first_compute=on_first_compute)
        spec = run.task.spec
        endpoints = EndpointBinding(resolve_endpoints(spec), store, spec.facts.data_must_stay_in_house)
        return cls(run, store, endpoints, hooks)

    def close(self) -> None:
        """Close the endpoints' clients and the store."""
        self.endpoints.close()
        self.store.close()

    # ---- building -----------------------------------------------------------------------------

    def build(
        self, planned: PlannedRung | str, *, engine: Engine | None = None, observer: PromptObserver | None = None
    ) -> BuiltRung:
        """A fresh predictor of the rung, with its choice on validation applied.

        `engine`: the model it runs on instead of its own (a server's shared base, or a fresh copy);
        `observer`: told every prompt the predictor sends (not those of the choice).
        """
        planned = self._planned(planned) if isinstance(planned, str) else planned
        context = self.context_for(planned)
        config, selection = self.chosen(planned)
        if engine is not None:
            context = replace(context, engine=engine)
        if observer is not None:
            context = replace(context, observer=observer)
        return BuiltRung(planned, config, selection, planned.type.build(config, context), context)

    def chosen(self, planned: PlannedRung) -> tuple[RungConfig, Selection | None]:
        """The configuration that answers (the choice on validation, read from the store; made there only
        when the store computes), and the record of the alternatives tried."""
        if planned.name not in self._chosen:
            context = self.context_for(planned)
            if choice_space(planned.config, context):
                self.hooks.stage(f"{planned.name}: choosing among its alternatives on the validation split")
            try:
                self._chosen[planned.name] = chosen_config(
                    planned.type, planned.config, context, self.store, f"rungs.{planned.name}"
                )
            except NotStored as missing:
                raise ChoiceNotStored(
                    f"rungs.{planned.name}: its choice on validation is not in the result store ({self.store.path}); "
                    f"`advisor assess {self.source} --rungs {planned.name}` makes it"
                ) from missing
        return self._chosen[planned.name]

    def tuned(self, planned: PlannedRung) -> TunedModel | None:
        """The tuned model of a rung that changes weights (built, not trained); None for a prompting rung,
        which is not built (nothing of its choice on validation is needed)."""
        return self.build(planned).predictor.tuned() if planned.type.changes_weights else None

    def step_of(self, planned: PlannedRung) -> int:
        """Its place on the ladder: its type's, or, for a variant of another rung (an export), that rung's."""
        source = planned.config.variant_of()
        return self.planned[source].type.step if source in self.planned else planned.type.step

    def context_for(self, planned: PlannedRung) -> RungContext:
        """The planned rung's context: answered by its endpoint, its other model, or the task's model."""
        context = self.run.models.context_for(planned.model, self.context, f"{self.source}: rungs.{planned.name}")
        return self.endpoints.context_for(planned, context)

    # ---- the other rungs, as a student or an export sees them (harness.rungs.OtherRungs) ------

    def fingerprint(self, name: str) -> str:
        """The named rung's fingerprint (it is built, and chooses on validation, when it searches)."""
        if name in self._asking:  # a student whose teacher is, in the end, itself
            raise InputError(f"rungs.{name}: learns from itself (a teacher cannot be its own student's student)")
        self._asking.add(name)
        try:
            return self._teacher(name).fingerprint()
        finally:
            self._asking.discard(name)

    def answers(self, name: str, examples: Sequence[Example]) -> list[Output]:
        """The named rung's answers, through the store."""
        context = self.context
        scorer = scorer_for(context.task_type, context.labels)
        run = run_predictor(self._teacher(name), examples, self.store, scorer, latency_sample=0)
        return [record.output for record in run.records]

    def tuned_model(self, name: str) -> TunedModel | None:
        """The named rung's trained model (built here, trained when its engine is first asked for)."""
        return self._teacher(name).tuned()

    def _teacher(self, name: str) -> Predictor:
        if name not in self._teachers:
            self._teachers[name] = self.build(self._planned(name)).predictor
        return self._teachers[name]

    def _planned(self, name: str) -> PlannedRung:
        if name in self.planned:
            return self.planned[name]
        known = ", ".join(self.planned)
        try:
            self.run.models.check(name, f"{self.source}: teacher '{name}'")
        except InputError:
            raise InputError(
                f"rungs: no rung named '{name}' to learn from, nor a model folder of that name "
                f"(the task's rungs: {known})"
            ) from None
        zero_shot = get_rung("zero_shot")
        return PlannedRung(name, zero_shot, zero_shot.parse({}, f"{self.source}: teacher '{name}'"), model=name)


@contextmanager
def bound_rungs(
    run: PreparedRun,
    *,
    stored_only: bool = False,
    on_first_compute: Callable[[], None] | None = None,
    hooks: ProgressHooks | None = None,
) -> Iterator[BoundRungs]:
    """The run's rungs over its result store and the task's endpoints; both are closed afterwards."""
    rungs = BoundRungs.open(run, stored_only=stored_only, on_first_compute=on_first_compute, hooks=hooks)
    try:
        yield rungs
    finally:
        rungs.close()
