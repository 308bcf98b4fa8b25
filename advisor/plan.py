"""`advisor assess --plan`: what each rung will take on this machine, and cost, before running anything.

A short calibration measures this machine's rates on the task's own prompts: batched scoring tokens/s,
single-request seconds per token, decode seconds per generated token, and one training step of each
tuning method. Each rung's work is then counted (test examples x prompt tokens, train tokens x epochs)
and multiplied out. The plan is stored beside the task; the next real run puts plan and measurement
side by side in its Assessment, so the estimate's error is visible.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from advisor.endpoints import training_tokens
from advisor.plan_store import PLAN_VERSION, plan_key
from advisor.run import PreparedRun
from harness.metrics.calibration import time_generation, time_scoring, time_single
from harness.pricing.prices import (
    ApiPrice,
    api_cost_per_1k,
    hardware_for_device,
    hosted_training_cost,
    load_prices,
    self_hosted_cost_per_1k,
    training_cost,
)
from harness.remote.endpoint import Endpoint
from harness.rungs import RequestShape, RungContext
from harness.types import Example

CALIBRATION_EXAMPLES = 12
TRAINING_ROWS = 8


def make_plan(run: PreparedRun) -> dict[str, Any]:
    """Calibrate, then estimate every planned rung: seconds (evaluation, training), tokens, $ per 1k."""
    started = time.perf_counter()
    context = run.context
    prices = load_prices(run.task.spec.pricing)
    costs = run.task.spec.costs
    _, hardware = prices.gpu_price(costs.serving_hardware)
    trained_on = costs.training_hardware or hardware_for_device(context.device, prices)
    _, train_hardware = prices.gpu_price(trained_on, training=True)
    rates: dict[str | None, ModelRates] = {None: _model_rates(context, run.test)}
    for planned in run.planned:  # a rung answered by another local model is timed on that model
        if planned.model is not None and planned.model not in rates:
            other = run.models.context_for(planned.model, context, f"{run.task.path}: rungs.{planned.name}")
            rates[planned.model] = _model_rates(other, run.test)
    shapes = [
        p.config.request_shape(rates[p.model].zero_tokens, rates[p.model].demo_tokens, bool(context.labels))
        for p in run.planned
    ]
    embed_s = _embedding_seconds(run) if any(shape.embeds for shape in shapes) else 0.0
    training_rates: dict[str, float] = {}
    rungs = []
    for planned, shape in zip(run.planned, shapes, strict=True):
        if planned.endpoint is not None:
            rungs.append(_remote_estimate(run, planned.name, run.endpoints[planned.endpoint], shape, embed_s))
            continue
        model = rates[planned.model]
        scoring, single, generation, zero_tokens = model.scoring, model.single, model.generation, model.zero_tokens
        tokens, new_tokens = shape.prompt_tokens, shape.new_tokens
        compute_tokens = zero_tokens if shape.shared_prefix else tokens
        per_example = compute_tokens / scoring if scoring and not new_tokens else compute_tokens * single
        per_example += new_tokens * generation
        evaluation = len(run.test) * per_example
        if shape.embeds:  # the train split (the retrieval corpus) and every question are embedded once
            evaluation += (len(context.train) + len(run.test)) * embed_s
        latency = tokens * single + new_tokens * generation * 2  # batch size 1 decodes slower than batched rows
        train_seconds = None
        tuned = planned.type.build(planned.config, context).tuned()
        if tuned is not None:
            kind = planned.type.kind
            if kind not in training_rates:
                training_rates[kind] = tuned.training_rate(TRAINING_ROWS)
            epoch_tokens, validation = tuned.epoch_work()
            judging = validation * (1 / scoring * zero_tokens if scoring else zero_tokens * single)
            train_seconds = tuned.planned_epochs() * (epoch_tokens / training_rates[kind] + judging)
        rate = 1.0 / per_example if per_example > 0 else None
        rungs.append(
            {
                "name": planned.name,
                "prompt_tokens": tokens,
                "evaluation_s": evaluation + latency * run.task.spec.evaluation.latency_sample,
                "training_s": train_seconds,
                "total_s": evaluation + latency * run.task.spec.evaluation.latency_sample + (train_seconds or 0.0),
                "p50_s": latency,
                "per_1k": self_hosted_cost_per_1k(rate, hardware.per_hour) if rate else None,
                "training_cost": training_cost(train_seconds, train_hardware.per_hour) if train_seconds else None,
            }
        )
    return {
        "version": PLAN_VERSION,
        "key": plan_key(run.task.spec, run.splits.file_hashes, run.context.device),
        "rates": {
            "scoring_tokens_per_s": rates[None].scoring,
            "single_request_s_per_token": rates[None].single,
            "generation_s_per_token": rates[None].generation,
            "embedding_s_per_text": embed_s,
            "training_tokens_per_s": training_rates,
        },
        "calibration_s": time.perf_counter() - started,
        "rungs": rungs,
    }


def _remote_estimate(
    run: PreparedRun, name: str, endpoint: Endpoint, shape: RequestShape, embed_s: float
) -> dict[str, Any]:
    """A remote rung: its $ from the prompt's tokens and the endpoint's price; time here is only the local part.

    The endpoint's own time is not known before the run (its hardware, its load, the network), so the
    plan counts the embedding done here and says the rest is the endpoint's.
    """
    context = run.context
    labels = context.labels
    answer = shape.new_tokens or (fmean(len(context.prompts.choice_tokens(label)) for label in labels) if labels else 0)
    per_1k = None
    if endpoint.price is not None:
        price = ApiPrice(
            input_per_million=endpoint.price.input_per_million, output_per_million=endpoint.price.output_per_million
        )
        per_1k = api_cost_per_1k(shape.prompt_tokens, answer, price)
    local = (len(context.train) + len(run.test)) * embed_s if shape.embeds else 0.0
    tuning = None
    if endpoint.hosted_fine_tuning:
        _, service = load_prices(run.task.spec.pricing).hosted_tuning_price(endpoint.hosted_fine_tuning)
        tuning = hosted_training_cost(
            training_tokens(context), endpoint.fine_tuning_epochs, service.training_per_million
        )
    return {
        "name": name,
        "endpoint": endpoint.name,
        "prompt_tokens": shape.prompt_tokens,
        "evaluation_s": local,
        "training_s": None,
        "total_s": local,
        "p50_s": None,
        "per_1k": per_1k,
        "training_cost": tuning,
    }


@dataclass(frozen=True)
class ModelRates:
    """One model's rates on this machine, on the task's own prompts."""

    zero_tokens: float  # mean tokens of a zero_shot prompt
    demo_tokens: float  # what one demonstration adds
    scoring: float | None  # batched scoring tokens/s (labelled tasks)
    generation: float  # decode seconds per generated token
    single: float  # single-request seconds per prompt token


def _model_rates(context: RungContext, test: Sequence[Example]) -> ModelRates:
    """Time the context's model on the first test examples."""
    engine, prompts, labels = context.engine, context.prompts, context.labels
    encoded = [prompts.split(example) for example in test[:CALIBRATION_EXAMPLES]]
    zero_tokens = fmean(len(a) + len(b) for a, b in encoded)
    fixed = len(prompts.encode(Example(id="", input="", target="")))  # instruction and template, once per prompt
    demo_tokens = max(
        _row_tokens(context) - fixed, 1.0
    )  # a demonstration adds its text and answer, not the instruction
    return ModelRates(
        zero_tokens=zero_tokens,
        demo_tokens=demo_tokens,
        scoring=time_scoring(engine, prompts, encoded, labels) if labels else None,
        generation=time_generation(engine, prompts, encoded[:8]),
        single=time_single(engine, prompts, encoded[0], labels),
    )


def _row_tokens(context: RungContext) -> float:
    """Mean tokens of a zero_shot prompt and its answer: also a demonstration's rough size."""
    prompts = context.prompts
    examples = context.train[:32]
    sizes = [len(prompts.encode(e)) + len(prompts.choice_tokens(e.target)) for e in examples]
    return fmean(sizes) if sizes else 0.0


def _embedding_seconds(run: PreparedRun) -> float:
    """Seconds to embed one train text (the embedder's load counted once, spread over the train split)."""
    texts = [
        e.input if isinstance(e.input, str) else " ".join(t["content"] for t in e.input) for e in run.context.train[:32]
    ]
    if not texts or run.context.embedder is None:
        return 0.0
    started = time.perf_counter()
    embedder = run.context.embedder()
    loaded = time.perf_counter() - started
    embedder.embed(texts[:4])  # warm-up
    started = time.perf_counter()
    embedder.embed(texts)
    return (time.perf_counter() - started) / len(texts) + loaded / max(len(run.context.train), 1)
