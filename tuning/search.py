"""A tuned rung's hyperparameter search: Optuna trials judged on the validation split, never on test.

The study lives in an Optuna journal file beside the store, so it survives a SIGKILL: a trial left
RUNNING by a killed process is taken up again under its own number and parameters (its training
resumes from its last checkpoint), so a resumed search runs the same trials as an uninterrupted one.
The sampler is re-seeded from (seed, trial number) before every new trial for the same reason.

Trials are judged a few times per epoch, and the pruner stops hopeless ones before a whole epoch
is spent. It judges them on the validation loss (the gold answers' log-likelihood), not on the
metric that finally selects: early on, a thresholded metric such as accuracy or macro-F1 often has
not left the majority class in any trial, so it cannot tell a good learning rate from a bad one,
while the loss already can. The first trial starts at the method's prior (or at the choice of a
finished search of the same family on this task, which then needs fewer trials) and is never pruned.
The caller holds a file lock around the whole search, so a RUNNING trial seen here is always a dead one.

Optuna is imported here, lazily: a run with `search: false`, or one that finds its search finished,
never loads it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.data.atomic import write_text_atomically
from harness.memory import release_memory
from tuning.judging import Evaluation, Judgement
from tuning.loop import EnoughTraining, EvaluationObserver, Pruned
from tuning.spaces import Dimension, Range, SearchOptions, describe

RESULT = "result.json"
JOURNAL = "journal.log"
EDGE_SHARE = 0.1  # a chosen value within the outer 10% of a range (log scale for log ranges) is at its edge


@dataclass(frozen=True)
class TrialOutcome:
    """What one finished trial reports back: its judgement per evaluation and its cost."""

    validation_metrics: list[float]
    validation_losses: list[float]
    evaluation_epochs: list[float]
    best_evaluation: int
    epochs_run: float
    steps: int
    seconds: float
    artifact: str


@dataclass
class TrialRecord:
    """One trial as cards and reports show it."""

    number: int
    params: dict[str, Any]
    state: str  # complete | pruned
    validation_metrics: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    evaluation_epochs: list[float] = field(default_factory=list)
    best_evaluation: int = 0
    best_epoch: float = 0.0  # where the kept weights were judged, in epochs (the best evaluation's place)
    epochs_run: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    score: float | None = None  # the best evaluation's selection value (the metric, or minus the loss)
    artifact: str = ""


@dataclass(frozen=True)
class WarmStart:
    """A finished search of the same family on the same task, whose choice this search starts from."""

    method: str
    params: dict[str, Any]
    search: str  # that search's folder name


@dataclass(frozen=True)
class SearchPlan:
    """What a search explores, how it judges, and where it starts."""

    space: dict[str, Dimension]
    options: SearchOptions
    metric: str
    max_epochs: int
    evaluations_per_epoch: int
    seed: int
    first: dict[str, Any]  # the first trial's parameters: the method's prior, or the warm start's choice
    warm_start: WarmStart | None = None
    at_once: int = 1  # trials asked and trained together (one pass over the base: tuning/trial_batch.py)

    def trial_limit(self) -> int:
        """How many trials the search runs: its budget, fewer for a small grid, a quarter (one at least, the
        sibling's choice: one by default) if warm-started."""
        limit = min(self.options.trials, _grid_size(self.space) or self.options.trials)
        return max(1, limit // 4) if self.warm_start is not None else limit


@dataclass
class SearchResult:
    """The finished search: every trial, the chosen one, and what a reader should be warned of."""

    metric: str
    space: dict[str, Any]
    trials: list[TrialRecord]
    chosen: int
    chosen_params: dict[str, Any]
    max_epochs: int
    budget: str | None
    seconds: float
    warnings: list[str] = field(default_factory=list)
    evaluations_per_epoch: int = 1
    warm_start: dict[str, Any] | None = None  # {method, params, search} of the search it started from

    def chosen_trial(self) -> TrialRecord:
        """The trial whose weights the rung uses."""
        return next(t for t in self.trials if t.number == self.chosen)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the result file, the card and the Assessment."""
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> SearchResult:
        """Read back what to_json wrote."""
        trials = [TrialRecord(**t) for t in data["trials"]]
        return SearchResult(**{**data, "trials": trials})


RunTrial = Callable[[int, dict[str, Any], EvaluationObserver], TrialOutcome]
"""Trains one trial: (its number, its parameters, the observer of its evaluations) -> its outcome."""

RunTrials = Callable[[list[tuple[int, dict[str, Any], EvaluationObserver]]], list[TrialOutcome | Pruned]]
"""Trains several trials together, each judgement told to its trial's observer in the order given -> each one's
outcome, or the Pruned that stopped it."""


@dataclass(frozen=True)
class TrialPool:
    """Where a search's trials train, up to `at_once` together: here (one pass over the base), or elsewhere (Ray
    workers, each trial's judgements coming back here, to its observer, as it trains)."""

    at_once: int
    run_trials: RunTrials
    run_trial: RunTrial | None = None  # one trial alone, when the pool has a way of its own (else run_trials of one)

    def one_at_a_time(self) -> RunTrial:
        """One trial through run_trials: its outcome, or the Pruned that stopped it raised."""

        def run(number: int, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome:
            outcome = self.run_trials([(number, params, observe)])[0]
            if isinstance(outcome, Pruned):
                raise outcome
            return outcome

        return run


def read_result(folder: Path) -> SearchResult | None:
    """The finished search stored in `folder`, or None."""
    path = folder / RESULT
    if not path.is_file():
        return None
    return SearchResult.from_json(json.loads(path.read_text(encoding="utf-8")))


def run_search(
    folder: Path, plan: SearchPlan, run_trial: RunTrial, run_trials: RunTrials | None = None
) -> SearchResult:
    """Run (or resume) the study in `folder` until its budget is spent; write and return the result.

    With `plan.at_once` > 1 and `run_trials`, the trials are asked in waves of that many and trained
    together (in one pass over the base, or on as many Ray workers). Each is judged, pruned and ended
    exactly as it would be alone (its evaluations are told in trial order, so the pruner compares it
    with the same earlier trials), with two differences from
    asking them one at a time: a wave's trials are sampled before any of them is told (TPE draws its
    later trials from fewer finished ones; a grid, and the first trials TPE draws at random, are the
    same), and the relative budget is counted at each wave's start (a wave's trials are not cut by
    what the others in it spend)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trial-by-trial log lines are ours to report
    folder.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
    space, options = plan.space, plan.options
    pruner = _pruner(options.pruner, plan.max_epochs * plan.evaluations_per_epoch)
    state = optuna.trial.TrialState

    def study(trial_number: int) -> Any:
        sampler = _sampler(space, options.trials, plan.seed, trial_number)
        return optuna.create_study(
            study_name="search",
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )

    started = time.perf_counter()
    budget = options.budget_seconds()
    current = study(0)
    if _grid_size(space) is None and not current.get_trials(deepcopy=False):
        current.enqueue_trial(plan.first)  # the first trial is never pruned: start where the best is expected

    def allowance() -> float | None:
        """Epochs the next trial may train within the relative budget (None while the first trial is unfinished)."""
        done = current.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED))
        first = next((t for t in done if t.number == 0), None)
        if first is None:
            return None
        spent = sum(float(t.user_attrs.get("epochs_run", 0.0)) for t in done)
        return options.relative_budget * float(first.user_attrs.get("epochs_run", 0.0)) - spent

    for stale in current.get_trials(deepcopy=False, states=(state.RUNNING,)):
        # Optuna has no public call to take up a RUNNING trial again; a Trial built on its id is what
        # study.ask() itself returns, and it keeps the trial's number, parameters and reported evaluations.
        _finish(current, optuna.trial.Trial(current, stale._trial_id), stale, space, run_trial, allowance())
    limit = plan.trial_limit()
    while True:
        done = current.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED))
        left = allowance()
        if len(done) >= limit or (budget is not None and _spent(done) >= budget):
            break
        if left is not None and left < 1 / plan.evaluations_per_epoch:  # not even one judgement's worth
            break
        wave = min(plan.at_once, limit - len(done)) if run_trials is not None else 1
        asked = []
        for _ in range(wave):
            current = study(len(current.get_trials(deepcopy=False)))
            asked.append(current.ask())
        if run_trials is not None and wave > 1:
            _finish_together(current, asked, space, run_trials, left)
        else:
            _finish(current, asked[0], None, space, run_trial, left)
    result = _result(current, plan, time.perf_counter() - started)
    write_text_atomically(folder / RESULT, json.dumps(result.to_json(), indent=2))
    return result


def _finish(
    study: Any, trial: Any, stale: Any, space: dict[str, Dimension], run_trial: RunTrial, allowance: float | None
) -> None:
    """Run one trial (a new one, or a stale one taken up again) and tell the study how it ended; a trial that
    reaches its `allowance` of epochs (what the search's relative budget leaves it) is stopped there."""
    params = {name: _suggest(trial, name, dim) for name, dim in space.items()}
    reported = set(stale.intermediate_values) if stale is not None else set()
    observe = _observer(trial, reported, allowance)
    try:
        outcome: TrialOutcome | Pruned = run_trial(trial.number, params, observe)
    except Pruned as stop:
        outcome = stop
    release_memory()  # the trial's model, optimizer and activations, before the next trial allocates its own
    _tell(study, trial, outcome)


def _finish_together(
    study: Any, trials: list[Any], space: dict[str, Dimension], run_trials: RunTrials, allowance: float | None
) -> None:
    """Run new trials together and tell the study how each ended."""
    asked = []
    for trial in trials:
        params = {name: _suggest(trial, name, dim) for name, dim in space.items()}
        asked.append((trial.number, params, _observer(trial, set(), allowance)))
    outcomes = run_trials(asked)
    release_memory()
    for trial, outcome in zip(trials, outcomes, strict=True):
        _tell(study, trial, outcome)


def _observer(trial: Any, reported: set[int], allowance: float | None) -> EvaluationObserver:
    """Reports a trial's evaluations to the pruner (once: `reported` holds those a resumed trial already reported)
    and stops it when pruned, or when it reaches its `allowance` of epochs."""

    def observe(evaluation: Evaluation) -> None:
        number = evaluation.number
        if number not in reported:  # else replayed after a resume: already in the journal
            trial.report(pruning_value(evaluation.judgement), number)
            reported.add(number)
            if trial.should_prune():
                raise Pruned(f"pruned after evaluation {number} (epoch {evaluation.epoch:g})")
        if allowance is not None and evaluation.epoch >= allowance - 1e-9:
            raise EnoughTraining  # ends like early stopping: the trial keeps its best judgement and may be chosen

    return observe


def _tell(study: Any, trial: Any, outcome: TrialOutcome | Pruned) -> None:
    """Record how the trial ended: its outcome, or what a pruned trial cost and showed (it counts as much)."""
    import optuna

    if isinstance(outcome, Pruned):
        if outcome.report is not None:
            report = outcome.report
            keys = ("validation_metrics", "validation_losses", "evaluation_epochs", "epochs_run", "steps", "seconds")
            for key in keys:
                trial.set_user_attr(key, getattr(report, key))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    for key, value in asdict(outcome).items():
        trial.set_user_attr(key, value)
    study.tell(trial, _score(outcome))


def pruning_value(judgement: Judgement) -> float:
    """What the pruner compares trials on at an evaluation: minus the validation loss (higher is better)."""
    return -judgement.loss


def _score(outcome: TrialOutcome) -> float:
    index = outcome.best_evaluation - 1
    if outcome.validation_metrics:
        return outcome.validation_metrics[index]
    return -outcome.validation_losses[index]


def _suggest(trial: Any, name: str, dim: Dimension) -> Any:
    if isinstance(dim, Range):
        if dim.integer():
            return trial.suggest_int(name, int(dim.low), int(dim.high))
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return trial.suggest_categorical(name, list(dim))


def _grid_size(space: dict[str, Dimension]) -> int | None:
    """How many points a space of choices only has; None when it has a range (or nothing)."""
    if not space or any(isinstance(d, Range) for d in space.values()):
        return None
    return math.prod(len(d) for d in space.values() if not isinstance(d, Range))


def _sampler(space: dict[str, Dimension], trials: int, seed: int, trial_number: int) -> Any:
    """A grid when the space is a few choices that the trials can cover; TPE otherwise.

    TPE is re-seeded per trial (a resumed search draws what an uninterrupted one drew); the grid keeps
    one seed, because it numbers its points in a seeded shuffle that every trial's sampler must share.
    """
    import optuna

    size = _grid_size(space)
    if size is not None and size <= trials:
        grid = {name: list(d) for name, d in space.items() if not isinstance(d, Range)}

        class AskAndTellGrid(optuna.samplers.GridSampler):  # type: ignore[misc]
            """A grid whose last trial does not stop the study: our loop counts the trials itself.

            GridSampler.after_trial calls study.stop() once the grid is covered, which raises
            RuntimeError outside study.optimize() (optuna#5141: ask-and-tell is unsupported there).
            """

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                return None

        return AskAndTellGrid(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed * 100_003 + trial_number, n_startup_trials=max(2, trials // 2))


def _pruner(kind: str, max_evaluations: int) -> Any:
    """The pruner over evaluations (a few per epoch): the first rung judges a trial at its first evaluation."""
    import optuna

    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_evaluations, reduction_factor=3)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _spent(trials: list[Any]) -> float:
    return sum(float(t.user_attrs.get("seconds", 0.0)) for t in trials)


def _result(study: Any, plan: SearchPlan, seconds: float) -> SearchResult:
    import optuna

    records = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        attrs = t.user_attrs
        complete = t.state == optuna.trial.TrialState.COMPLETE
        reported = [-v for _, v in sorted(t.intermediate_values.items())]  # minus the losses the pruner saw
        places = list(attrs.get("evaluation_epochs", []))
        best = int(attrs.get("best_evaluation", 0))
        records.append(
            TrialRecord(
                number=t.number,
                params=dict(t.params),
                state="complete" if complete else "pruned",
                validation_metrics=list(attrs.get("validation_metrics", [])),
                validation_losses=list(attrs.get("validation_losses", reported)),
                evaluation_epochs=places,
                best_evaluation=best,
                best_epoch=places[best - 1] if best else 0.0,
                epochs_run=float(attrs.get("epochs_run", len(reported) / plan.evaluations_per_epoch)),
                steps=int(attrs.get("steps", 0)),
                seconds=float(attrs.get("seconds", 0.0)),
                score=float(t.value) if complete else None,
                artifact=str(attrs.get("artifact", "")),
            )
        )
    complete = [r for r in records if r.state == "complete"]
    if not complete:
        raise RuntimeError("the search finished no trial")  # the first trial is never pruned
    chosen = max(complete, key=lambda r: (r.score, -r.validation_losses[r.best_evaluation - 1], -r.number))
    result = SearchResult(
        metric=plan.metric,
        space=describe(plan.space),
        trials=records,
        chosen=chosen.number,
        chosen_params=dict(chosen.params),
        max_epochs=plan.max_epochs,
        budget=plan.options.budget,
        seconds=sum(r.seconds for r in records) if records else seconds,
        evaluations_per_epoch=plan.evaluations_per_epoch,
        warm_start=asdict(plan.warm_start) if plan.warm_start is not None else None,
    )
    result.warnings = search_warnings(result, plan.space)
    return result


def expected_epochs(plan: SearchPlan, complete_epochs: float | None = None) -> float:
    """Epochs a search is expected to train in all, for `--plan`: its pruner simulated on random trial values.

    Successive halving promotes a trial past its evaluations 1, 3, 9, ... only when it is in the top
    third of the trials that reached that evaluation (the first trial always passes). A trial that is
    never pruned trains `complete_epochs` (early stopping's expected end, `stopping_epochs`), else them all;
    the whole search trains at most its relative budget times the first trial's epochs.
    """
    import random

    count, per_epoch = plan.trial_limit(), plan.evaluations_per_epoch
    evaluations = round(min(complete_epochs or plan.max_epochs, plan.max_epochs) * per_epoch)
    cap = plan.options.relative_budget * evaluations
    if plan.options.pruner == "none":
        return min(count * evaluations, cap) / per_epoch
    rng = random.Random(0)
    total = 0.0
    runs = 200
    for _ in range(runs):
        seen: dict[int, list[float]] = {}
        spent = 0
        for index in range(count):
            value, judged, rung, step = rng.random(), evaluations, 0, 1
            while step < evaluations:
                competing = sorted([*seen.setdefault(rung, []), value])
                seen[rung].append(value)
                keep = max(len(competing) // 3, 1)
                if index > 0 and value < competing[-keep]:
                    judged = step
                    break
                rung, step = rung + 1, step * 3
            spent += judged
        total += min(spent, cap)
    return total / runs / per_epoch


# Where the best judgement of a run falls, as a share of its planned epochs: measured at 0.5-0.6 on the
# example's lora and qlora (best at 2.5-3.0 of 5 epochs, every trial that was not pruned).
_BEST_SHARE = 0.6


def stopping_epochs(max_epochs: int, patience: float) -> float:
    """Epochs a run is expected to train before early stopping ends it: its best judgement, then `patience`."""
    return min(float(max_epochs), round(_BEST_SHARE * max_epochs * 2) / 2 + patience)


def search_warnings(result: SearchResult, space: dict[str, Dimension]) -> list[str]:
    """The chosen value at the edge of its range, or a validation metric still rising when training stopped."""
    warnings = []
    chosen = result.chosen_trial()
    for name, dim in space.items():
        value = chosen.params.get(name)
        if isinstance(dim, Range) and isinstance(value, (int, float)):
            scale = math.log if dim.log else float
            share = (scale(value) - scale(dim.low)) / (scale(dim.high) - scale(dim.low))
            if share <= EDGE_SHARE or share >= 1 - EDGE_SHARE:
                side = "low" if share <= EDGE_SHARE else "high"
                warnings.append(
                    f"the chosen {name} ({value:.3g}) sits at the {side} edge of the searched range "
                    f"[{dim.low:g}, {dim.high:g}]"
                )
    judged = len(chosen.validation_losses)
    if chosen.best_evaluation == judged > 1 and chosen.epochs_run >= result.max_epochs:
        metrics = chosen.validation_metrics
        rising = result.metric != "loss" and len(metrics) > 1 and metrics[-1] > metrics[-2]
        what = f"validation {result.metric} still rising" if rising else "validation loss still falling"
        warnings.append(f"may be under-trained: {what} at its last evaluation (epoch {chosen.epochs_run:g})")
    return warnings
