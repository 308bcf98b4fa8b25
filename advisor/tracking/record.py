"""An Assessment as tracking runs: one parent per assessment, one child per rung, one grandchild per trial.

Pure data, so every sink logs the same numbers and a test can check them without a tracking library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.decision.assessment import Assessment, RungResult, SearchSummary

MAX_PARAM_LENGTH = 500  # MLflow's limit on a param value is 6000; options longer than this are truncated


@dataclass
class TrackedRun:
    """One run: params, final metrics, per-step histories, tags and files to attach."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    histories: dict[str, list[float]] = field(default_factory=dict)  # metric name -> values at steps 1, 2, ...
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    examples_inside: list[Path] = field(default_factory=list)  # artifacts that hold the task's examples
    children: list[TrackedRun] = field(default_factory=list)


def assessment_run(assessment: Assessment, files: list[Path], git_commit: str | None, task_hash: str) -> TrackedRun:
    """The parent run of an assessment (the Assessment JSON and reports in `files`) with a child per rung."""
    task = assessment.task
    recommendation = assessment.recommendation
    from_cache = all(_from_cache(r) for r in assessment.rungs)
    tags = {
        "ladder.task": task.name,
        "ladder.task_hash": task_hash,
        "ladder.model": task.model,
        "ladder.model_fingerprint": task.model_fingerprint,
        "ladder.data_hashes": json.dumps(task.data_hashes, sort_keys=True),
        "ladder.from_cache": str(from_cache).lower(),
        "ladder.created_at": assessment.created_at,
    }
    if git_commit:
        tags["mlflow.source.git.commit"] = git_commit
    if recommendation is not None:
        tags["ladder.recommendation"] = recommendation.rung or "none"
        tags["ladder.recommendation.summary"] = recommendation.summary
        tags["ladder.recommendation.reasons"] = "\n".join(recommendation.reasons)
    params = {
        "task_type": task.type,
        "model": task.model,
        "primary_metric": task.primary_metric,
        "seed": str(task.seed),
        "n_train": str(task.n_train),
        "n_validation": str(task.n_validation),
        "n_test": str(task.n_test),
        "device": assessment.environment.device,
    }
    return TrackedRun(
        name=f"{task.name} {assessment.created_at}",
        params=params,
        tags=tags,
        artifacts=list(files),
        examples_inside=list(files),  # the Assessment and the reports quote test examples
        children=[rung_run(r) for r in assessment.rungs],
    )


def rung_run(rung: RungResult) -> TrackedRun:
    """A rung's child run: options as params; quality, latency, tokens, $ and forgetting as metrics."""
    metrics: dict[str, float] = {}
    for name, value in rung.metrics.items():
        metrics[name] = value.value
        metrics[f"{name}.ci_low"] = value.ci_low
        metrics[f"{name}.ci_high"] = value.ci_high
    _put(metrics, "latency.p50_s", rung.latency.p50_s)
    _put(metrics, "latency.p95_s", rung.latency.p95_s)
    _put(metrics, "throughput.examples_per_s", rung.latency.batched_examples_per_s)
    metrics["tokens.prompt_mean"] = rung.tokens.prompt_mean
    metrics["tokens.completion_mean"] = rung.tokens.completion_mean
    if rung.cost is not None:
        _put(metrics, "cost.per_1k_requests", rung.cost.per_1k)
        _put(metrics, "cost.monthly", rung.cost.monthly)
        _put(metrics, "cost.training", rung.cost.training)
    if rung.forgetting is not None:
        _put(metrics, "forgetting.delta", rung.forgetting.delta)
        _put(metrics, "forgetting.tuned_accuracy", rung.forgetting.tuned_accuracy)
    _put(metrics, "seconds", rung.seconds)
    histories: dict[str, list[float]] = {}
    artifacts: list[Path] = []
    children: list[TrackedRun] = []
    if rung.training is not None:
        training = rung.training
        metrics["training.seconds"] = training.seconds
        metrics["training.peak_rss_mb"] = training.peak_rss_mb
        metrics["training.useful_tokens_per_s"] = training.useful_tokens_per_s
        histories["train.loss"] = list(training.train_losses)
        histories["train.learning_rate"] = list(training.learning_rates)
        histories["train.tokens_per_s"] = list(training.tokens_per_s)
        histories[f"validation.{training.selection_metric}"] = list(training.validation_metrics)
        histories["validation.loss"] = list(training.validation_losses)
        card = Path(training.artifact)
        artifacts = [p for p in (card / "card.md", card / "card.json") if p.is_file()]
    search = rung.training.search if rung.training is not None else rung.selection
    if search is not None:
        children = trial_runs(rung.name, search)
    tags = {
        "ladder.kind": rung.kind,
        "ladder.step": str(rung.step),
        "ladder.tuned": str(rung.tuned).lower(),
        "ladder.from_cache": str(_from_cache(rung)).lower(),
        "ladder.scoring": rung.scoring,
    }
    if rung.endpoint is not None:
        tags["ladder.endpoint"] = rung.endpoint.name
    if rung.model is not None:
        tags["ladder.other_model"] = rung.model
    return TrackedRun(
        name=rung.name,
        params=flat_params(rung.config),
        metrics=metrics,
        histories={k: v for k, v in histories.items() if v},
        tags=tags,
        artifacts=artifacts,
        children=children,
    )


def trial_runs(rung: str, search: SearchSummary) -> list[TrackedRun]:
    """One run per hyperparameter trial (or prompt alternative) of a rung's search."""
    runs = []
    for trial in search.trials:
        metrics: dict[str, float] = {"seconds": trial.seconds}
        _put(metrics, "score", trial.score)
        if trial.validation_metrics:
            metrics[f"validation.{search.metric}"] = trial.validation_metrics[-1]
        histories = {f"validation.{search.metric}": list(trial.validation_metrics)}
        if trial.validation_losses:
            histories["validation.loss"] = list(trial.validation_losses)
        tags = {"ladder.trial_state": trial.state, "ladder.chosen": str(trial.number == search.chosen).lower()}
        runs.append(
            TrackedRun(
                name=f"{rung} trial {trial.number}",
                params=flat_params(trial.params),
                metrics=metrics,
                histories={k: v for k, v in histories.items() if v},
                tags=tags,
            )
        )
    return runs


def flat_params(options: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested options as dotted params, each value as text (what tracking servers store)."""
    flat: dict[str, str] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[name] = text[:MAX_PARAM_LENGTH]
    return flat


def _from_cache(rung: RungResult) -> bool:
    """Nothing of the rung was computed in this run: its answers and its weights came from the store."""
    trained_now = rung.training is not None and rung.training.trained_now
    return rung.computed == 0 and not trained_now


def _put(metrics: dict[str, float], name: str, value: float | None) -> None:
    if value is not None:
        metrics[name] = float(value)
