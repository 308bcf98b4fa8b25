"""What a reader should know about how a tuned rung was trained: its search, and signs of under-training.

One place for these sentences, so the recommendation's reasons and every report say the same thing.
"""

from __future__ import annotations

from typing import Any

from advisor.decision.assessment import RungResult, SearchSummary, SearchTrial

SMALL_VALIDATION = 100  # below this, a choice between close trials is noisy


def training_warnings(rung: RungResult) -> list[str]:
    """'may be under-trained', 'chosen value at the edge of its range', 'small validation split'.

    A prompting rung that chose among alternatives gets the last of these.
    """
    training = rung.training
    if training is None:
        chosen_on = rung.selection.validation_examples if rung.selection else None
        if chosen_on is not None and chosen_on < SMALL_VALIDATION:
            noisy = f"noisy below {SMALL_VALIDATION}"
            return [f"its alternative was chosen on only {chosen_on} validation examples ({noisy})"]
        return []
    warnings = list(training.search.warnings) if training.search is not None else _fixed_run_warnings(rung)
    if 0 < training.validation_examples < SMALL_VALIDATION:
        warnings.append(
            f"its epochs{' and trial' if training.search else ''} were chosen on only "
            f"{training.validation_examples} validation examples (noisy below {SMALL_VALIDATION}); "
            "the chosen configuration is not refit on train + validation"
        )
    return warnings


def _fixed_run_warnings(rung: RungResult) -> list[str]:
    training = rung.training
    assert training is not None
    epochs = rung.config.get("epochs")
    if not isinstance(epochs, int) or training.epochs_run < epochs or training.best_epoch < training.epochs_run:
        return []
    if epochs < 2:
        return [f"may be under-trained: trained for a single epoch with a fixed learning rate ({_lr(rung)})"]
    metrics = training.validation_metrics
    rising = len(metrics) > 1 and metrics[-1] > metrics[-2]
    what = f"validation {training.selection_metric} still rising" if rising else "validation loss still falling"
    return [f"may be under-trained: {what} at the last epoch ({epochs}), with a fixed learning rate ({_lr(rung)})"]


def _lr(rung: RungResult) -> str:
    value = rung.config.get("learning_rate")
    return f"{value:g}" if isinstance(value, (int, float)) else "the method's default"


def rung_search(rung: RungResult) -> SearchSummary | None:
    """The rung's search: a tuned rung's trials, or a prompting rung's alternatives."""
    if rung.training is not None and rung.training.search is not None:
        return rung.training.search
    return rung.selection


def search_line(rung: RungResult) -> str | None:
    """One sentence: how many trials, over what, chosen how, and what it cost."""
    if rung.selection is not None:
        return _selection_line(rung.name, rung.selection)
    training = rung.training
    if training is None or training.search is None:
        return None
    search = training.search
    chosen = next(t for t in search.trials if t.number == search.chosen)
    pruned = sum(t.state == "pruned" for t in search.trials)
    space = ", ".join(f"{name} {_space_text(dim)}" for name, dim in search.space.items())
    params = _params_text(search.chosen_params)
    budget = f"; wall-clock budget {search.budget} (machine-dependent)" if search.budget else ""
    warm = search.warm_start
    started = ""
    if warm:
        alone = "trained it alone" if len(search.trials) == 1 else f"ran {len(search.trials)} trials from it"
        started = f"; started from {warm['method']}'s choice ({_params_text(warm['params'])}) and {alone}"
    return (
        f"{rung.name}: {len(search.trials)} trials ({pruned} pruned) over {space}, up to {search.max_epochs} epochs, "
        f"chosen on validation {search.metric} ({training.validation_examples} examples): trial {chosen.number} "
        f"({params}, best at epoch {chosen.best_epoch:g} of {chosen.epochs_run:g}); {search.seconds:.0f} s for all "
        f"trials, {chosen.seconds:.0f} s for the chosen one{budget}{started}"
    )


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_value_text(v)}" for k, v in params.items())


def _selection_line(name: str, search: SearchSummary) -> str:
    chosen = next(t for t in search.trials if t.number == search.chosen)
    space = ", ".join(f"{option} {_space_text(values)}" for option, values in search.space.items())
    params = ", ".join(f"{k} {_value_text(v)}" for k, v in search.chosen_params.items())
    value = chosen.validation_metrics[0] if chosen.validation_metrics else float("nan")
    return (
        f"{name}: {len(search.trials)} alternatives over {space}, chosen on validation {search.metric} "
        f"({search.validation_examples} examples): {params} ({value:.3f}); {search.seconds:.0f} s on validation"
    )


def trial_cells(search: SearchSummary) -> tuple[list[str], list[list[str]]]:
    """One row per trial: parameters, state, validation metric per epoch, best epoch, loss, seconds."""
    names = list(search.space)
    if not search.max_epochs:  # a prompting rung's alternatives: one judgement each, no epochs
        headers = ["alternative", *names, f"validation {search.metric}", "s"]
        return headers, [
            [
                f"{t.number}{' (chosen)' if t.number == search.chosen else ''}",
                *(_value_text(t.params.get(name)) for name in names),
                _series(t),
                f"{t.seconds:.0f}",
            ]
            for t in search.trials
        ]
    per_epoch = search.evaluations_per_epoch
    judged = "by epoch" if per_epoch == 1 else f"{per_epoch}x per epoch"
    headers = ["trial", *names, "state", f"validation {search.metric} {judged}", "best epoch", "val. loss", "s"]
    rows = []
    for trial in search.trials:
        rows.append(
            [
                f"{trial.number}{' (chosen)' if trial.number == search.chosen else ''}",
                *(_value_text(trial.params.get(name)) for name in names),
                trial.state,
                _series(trial),
                f"{trial.best_epoch:g}" if trial.state == "complete" else "-",
                f"{trial.validation_losses[trial.best_evaluation - 1]:.3f}" if _has_best(trial) else "-",
                f"{trial.seconds:.0f}",
            ]
        )
    return headers, rows


def _has_best(trial: SearchTrial) -> bool:
    return trial.state == "complete" and 0 < trial.best_evaluation <= len(trial.validation_losses)


def _series(trial: SearchTrial) -> str:
    values = trial.validation_metrics or trial.validation_losses
    return " → ".join(f"{v:.3f}" for v in values) or "-"


def _value_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _space_text(dim: Any) -> str:
    if isinstance(dim, dict):
        return f"[{dim['low']:g}, {dim['high']:g}]{' (log)' if dim.get('log') else ''}"
    return "{" + ", ".join(str(v) for v in dim) + "}"
