"""A tuned rung's search: where it starts (the method's prior, or a sibling's choice), its trials trained by the
Trainer, its result read back on a re-run, and what `--plan` expects of it."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from harness.distributed import group_lock
from tuning.artifact import TunedArtifacts, remove
from tuning.loop import EvaluationObserver, Pruned
from tuning.options import TuneConfig
from tuning.search import (
    SearchPlan,
    SearchResult,
    TrialOutcome,
    TrialPool,
    WarmStart,
    expected_epochs,
    read_result,
    run_search,
    stopping_epochs,
)
from tuning.search_group import run_search_in_group
from tuning.spaces import Dimension, Range, center, prior_learning_rate
from tuning.trainer import Trainer
from tuning.tuning_task import TuningTask
from tuning.warm_start import find_choice, record_choice


class TunedSearch:
    """The search over a tuning task's space (when it has one), run once per store."""

    def __init__(self, task: TuningTask, trainer: Trainer):
        self.task = task
        self.trainer = trainer
        self.artifacts: TunedArtifacts = trainer.artifacts
        self._result: SearchResult | None = None

    def family(self) -> str | None:
        """The method's family when this rung searches and may start from (or warm-start) its siblings."""
        task = self.task
        search = task.config.search
        return task.spec.family if task.space and search is not False and search.warm_start else None

    def plan(self) -> SearchPlan:
        """What the search explores, and where it starts: the method's prior, or a finished sibling search's choice."""
        task = self.task
        search = task.config.search
        assert search is not False  # a space exists only when the search is on
        first = {name: self._first_value(name, dimension) for name, dimension in task.space.items()}
        warm = None
        if self.family():
            folder = self.artifacts.search_folder().name
            warm = find_choice(task.context.cache_dir, self.artifacts.family_key(), folder, task.space)
        return SearchPlan(
            space=task.space,
            options=search,
            metric=task.metric,
            max_epochs=task.config.epochs,
            evaluations_per_epoch=task.config.evaluations_per_epoch,
            seed=task.context.seed,
            first={**first, **(warm.params if warm else {})},
            warm_start=warm,
        )

    def _first_value(self, name: str, dimension: Dimension) -> Any:
        """The first trial's value: the learning-rate prior when the range holds it, else the middle of the range."""
        prior = prior_learning_rate(self.task.method, self.task.parameters)
        if name == "learning_rate" and isinstance(dimension, Range) and dimension.low <= prior <= dimension.high:
            return prior
        return center(dimension)

    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """Epochs expected over all trials (for `--plan`); a search of a family the run has already searched is
        warm-started and runs a quarter of the trials."""
        config = self.task.config
        stopping = stopping_epochs(config.epochs, config.patience)
        if not self.task.space or config.search is False:
            return stopping
        plan = self.plan()
        family = self.family()
        if plan.warm_start is None and family in searched:
            plan = replace(plan, warm_start=WarmStart(family, {}, ""))
        return expected_epochs(plan, stopping)

    def result(self) -> SearchResult | None:
        """The finished search (every trial, the choice, warnings); None for a fixed run or before it ran."""
        if self._result is None and self.task.space:
            self._result = read_result(self.artifacts.search_folder())
        return self._result

    def chosen(self) -> TuneConfig:
        """The configuration whose weights answer: the fixed one, or the search's choice once it is known."""
        if not self.task.space:
            return self.task.config
        result = self.result()
        if result is None:
            raise RuntimeError("the rung's search has not run yet: call prepare() first")
        return self.task.concrete(result.chosen_params)

    def run(self, pool: TrialPool | None = None) -> SearchResult:
        """Run the search (its trials trained here, or by `pool`), or wait for the run that is running it and read
        its result."""
        folder = self.artifacts.search_folder()
        folder.parent.mkdir(parents=True, exist_ok=True)
        with group_lock(folder):  # a second run on this store waits, then reads the result
            result = read_result(folder)
            if result is None:
                plan = self.plan()  # read once: its warm start comes from the store, and trials only report it
                limit = plan.trial_limit()
                if pool is None:
                    at_once = self.trainer.trials_at_once(plan.options.trials_at_once, limit)
                    pool = TrialPool(at_once, partial(self._trials, limit), partial(self._trial, limit))
                plan = replace(plan, at_once=min(pool.at_once, limit))
                search = partial(run_search, folder, plan, run_trials=pool.run_trials)
                result = run_search_in_group(search, pool.run_trial or pool.one_at_a_time())
                self._keep_only_chosen(result)
                if self.task.spec.family:
                    family_key = self.artifacts.family_key()
                    cache = self.task.context.cache_dir
                    record_choice(cache, family_key, self.task.method, result.chosen_params, folder.name)
            self._result = result
        return result

    def _trial(self, limit: int, number: int, params: dict[str, Any], observe: EvaluationObserver) -> TrialOutcome:
        progress = self.task.context.training_progress
        if progress:
            progress.trial(self.task.method, number, limit, params)
        return self.trainer.trial(params, observe)

    def _trials(
        self, limit: int, asked: list[tuple[int, dict[str, Any], EvaluationObserver]]
    ) -> list[TrialOutcome | Pruned]:
        progress = self.task.context.training_progress
        if progress:
            for number, params, _ in asked:
                progress.trial(self.task.method, number, limit, params)
        return self.trainer.trials_together([(params, observe) for _, params, observe in asked])

    def _keep_only_chosen(self, result: SearchResult) -> None:
        """Trial artifacts other than the chosen one are not used again (full fine-tunes are large)."""
        for trial in result.trials:
            if trial.number != result.chosen and trial.artifact:
                remove(self.artifacts.trial_folder(trial.artifact))

    def record_on_card(self) -> None:
        """The chosen artifact's card carries the whole search: every trial, the choice, the warnings."""
        result = self.result()
        folder = self.artifacts.folder(self.chosen()) if result is not None else None
        card = self.artifacts.card(folder) if folder is not None else None
        if result is not None and folder is not None and card is not None and card.search is None:
            self.artifacts.update_card(folder, search=result.to_json())
