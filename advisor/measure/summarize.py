"""From a rung's records to its row in the Assessment: metrics with CIs, latency, tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean

from advisor.decision.assessment import (
    ForgettingSummary,
    LatencySummary,
    MetricValue,
    RecordSummary,
    RungResult,
    SearchSummary,
    SearchTrial,
    TokenSummary,
    TrainingSummary,
)
from advisor.decision.calibration_notes import calibration_summary
from harness.cards import AdapterCard
from harness.metrics.bootstrap import Estimate, mean_estimate, percentile, retrieval_ranks
from harness.metrics.measurement import Measurement
from harness.metrics.task_metrics import build_columns, estimates, primary_metric, score_parts
from harness.runner import RunResult
from harness.selection import Selection
from harness.task_types import get_task_type
from harness.types import Record


def retrieval_metrics(records: list[Record], measurement: Measurement) -> dict[str, Estimate]:
    """recall@k and MRR of the gold passages, when the data names them and the rung retrieved."""
    scored = [r for r in records if "gold" in r.example.meta and "retrieved" in r.output.detail]
    if not scored:
        return {}
    k = max(len(r.output.detail["retrieved"]) for r in scored)
    ranks = retrieval_ranks([r.example.meta["gold"] for r in scored], [r.output.detail["retrieved"] for r in scored])
    return {
        f"recall_at_{k}": mean_estimate([float(rank is not None) for rank in ranks], measurement),
        "mrr": mean_estimate([1.0 / rank if rank else 0.0 for rank in ranks], measurement),
    }


@dataclass(frozen=True)
class RungDetails:
    """What a rung's row holds beyond its answers: its place, its choice, its time, training and forgetting."""

    step: int = 0
    selection: SearchSummary | None = None
    seconds: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    tuned: bool = False
    training: TrainingSummary | None = None
    forgetting: ForgettingSummary | None = None


def summarize_rung(
    name: str,
    kind: str,
    config: dict[str, object],
    task_type: str,
    run: RunResult,
    *,
    labels: Sequence[str],
    measurement: Measurement,
    similarities: Sequence[float] | None = None,
    ranked_on: str = "",
    extra_metrics: dict[str, Estimate] | None = None,
    details: RungDetails | None = None,
) -> RungResult:
    """The rung's row: quality with 95% CIs, p50/p95 latency, throughput and tokens per request."""
    records = run.records
    predictions = [r.score.detail.get("prediction") for r in records]
    parts = [score_parts(r) for r in records]
    if similarities is not None:
        parts = [{**p, "similarity": float(s)} for p, s in zip(parts, similarities, strict=True)]
    columns = build_columns([r.example.target for r in records], predictions, parts, labels)
    quality = estimates(task_type, columns, len(records), measurement)
    metrics = quality | retrieval_metrics(records, measurement) | (extra_metrics or {})
    details = details or RungDetails()
    batch_seconds = sum(r.output.latency_s for r in records)
    latency = LatencySummary(
        p50_s=_or_none(percentile(run.single_latencies_s, 50)),
        p95_s=_or_none(percentile(run.single_latencies_s, 95)),
        sample_size=len(run.single_latencies_s),
        batched_examples_per_s=len(records) / batch_seconds if batch_seconds > 0 else None,
        samples_s=list(run.single_latencies_s),
    )
    scoring = sorted({scoring_of(r) for r in records})
    tokens = TokenSummary(
        prompt_mean=fmean(r.output.prompt_tokens for r in records),
        completion_mean=fmean(r.output.completion_tokens for r in records),
    )
    return RungResult(
        name=name,
        kind=kind,
        config=config,
        primary_metric=ranked_on or primary_metric(task_type),
        metrics={key: metric_value(value) for key, value in metrics.items()},
        latency=latency,
        tokens=tokens,
        no_label_outputs=sum(p is None for p in predictions) if get_task_type(task_type).labelled else 0,
        computed=run.computed,
        reused=run.reused,
        step=details.step,
        selection=details.selection,
        calibration=calibration_summary(config, details.selection, records),
        seconds=details.seconds,
        phases=details.phases,
        tuned=details.tuned,
        training=details.training,
        forgetting=details.forgetting,
        scoring=", ".join(scoring),
        records=[
            RecordSummary(
                id=r.example.id,
                input=r.example.input if isinstance(r.example.input, str) else [dict(t) for t in r.example.input],
                target=r.example.target,
                output=r.output.text,
                prediction=p,
                correct=r.score.correct,
                prompt_tokens=r.output.prompt_tokens,
                completion_tokens=r.output.completion_tokens,
                latency_s=r.output.latency_s,
                scores=part,
            )
            for r, p, part in zip(records, predictions, parts, strict=True)
        ],
    )


def scoring_of(record: Record) -> str:
    """How an answer was read: as its answerer said (a remote one), else likelihoods when labels were scored."""
    detail = record.output.detail
    return str(detail.get("scoring") or ("likelihood" if "logprobs" in detail else "generate"))


def metric_value(estimate: Estimate) -> MetricValue:
    """An estimate as the Assessment stores it."""
    return MetricValue(value=estimate.value, ci_low=estimate.ci_low, ci_high=estimate.ci_high)


def _or_none(value: float) -> float | None:
    return None if value != value else value  # NaN when nothing was sampled


def training_summary(card: AdapterCard, artifact: str, trained_now: bool) -> TrainingSummary:
    """A tuned rung's training facts, from its artifact card."""
    training = card.training
    seconds = training.seconds
    search = SearchSummary.model_validate(card.search) if card.search else None
    earlier = float(card.preference.get("sft_seconds", 0.0)) if card.preference else 0.0  # a dpo rung's SFT stage
    return TrainingSummary(
        seconds=(search.seconds if search else seconds) + earlier,
        chosen_seconds=seconds,
        selection_metric=training.selection_metric,
        validation_metrics=list(training.validation_metrics),
        validation_examples=card.validation_examples,
        search=search,
        peak_rss_mb=training.peak_rss_mb,
        trainable_parameters=card.trainable_parameters,
        trainable_share=card.trainable_share,
        epochs_run=training.epochs_run,
        best_epoch=training.best_epoch,
        best_evaluation=training.best_evaluation,
        evaluation_epochs=list(training.evaluation_epochs),
        useful_tokens=training.useful_tokens,
        useful_tokens_per_s=training.useful_tokens / seconds if seconds > 0 else 0.0,
        train_losses=list(training.train_losses),
        learning_rates=list(training.learning_rates),
        tokens_per_s=list(training.tokens_per_s),
        validation_losses=list(training.validation_losses),
        artifact=artifact,
        trained_now=trained_now,
        preference=card.preference,
        distillation=card.distillation,
    )


def selection_summary(selection: Selection) -> SearchSummary:
    """A prompting rung's choice among its alternatives, in the same form as a tuned rung's search."""
    trials = [
        SearchTrial(number=i, params=c.params, state="complete", validation_metrics=[c.value], seconds=c.seconds)
        for i, c in enumerate(selection.choices)
    ]
    return SearchSummary(
        metric=selection.metric,
        space=dict(selection.space),
        trials=trials,
        chosen=selection.chosen,
        chosen_params=selection.choices[selection.chosen].params,
        max_epochs=0,
        seconds=sum(c.seconds for c in selection.choices),
        validation_examples=selection.validation_examples,
    )
