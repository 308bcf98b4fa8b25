"""`advisor assess --plan`: what each rung will take on this machine, and cost, before running anything.

A short calibration measures this machine's rates on the task's own prompts: batched scoring tokens/s,
single-request seconds per token, decode seconds per generated token, and one training step of each
tuning method. Each rung's work is then counted and multiplied out: its test answers, its choice
among alternatives on validation, its latency sample, a tuned rung's search (the trials its pruner is
expected to let run, fewer when it starts from a sibling's choice), its training epochs and the
validation judgements inside them (the tuned prompt, without the label list), and the forgetting
probes (the base model's once). The plan is stored beside the task; the next real run puts plan and
measurement side by side in its Assessment, for the work that run computed, so the error is visible.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from advisor.decision.assessment import TokenSummary
from advisor.decision.costs import serving_per_1k
from advisor.measure.endpoints import training_tokens
from advisor.measure.plan_store import PLAN_VERSION, Plan, PlanRates, RungEstimate, plan_key
from advisor.measure.prepare import PreparedRun
from advisor.measure.rung_builder import BoundRungs, bound_rungs
from harness.inference.prompts import PromptBuilder
from harness.metrics.calibration import time_generation, time_scoring, time_single
from harness.pricing.prices import (
    ApiPrice,
    api_cost_per_1k,
    hardware_for_device,
    hosted_training_cost,
    load_prices,
    training_cost,
)
from harness.remote.endpoint import Endpoint
from harness.rungs import PromptSizes, RequestShape, RungContext
from harness.selection import Searchable, alternatives, choice_space
from harness.types import Example

CALIBRATION_EXAMPLES = 12
TRAINING_ROWS = 8


def make_plan(run: PreparedRun) -> Plan:
    """Calibrate, then estimate every planned rung: seconds per phase, tokens, $ per 1k (computing nothing
    the result store would keep: its tuned rungs are built from a store opened for stored answers only)."""
    with bound_rungs(run, stored_only=True) as bound:
        return _plan(run, bound)


def _plan(run: PreparedRun, bound: BoundRungs) -> Plan:
    started = time.perf_counter()
    context = run.context
    prices = load_prices(run.task.spec.pricing)
    costs = run.task.spec.costs
    trained_on = costs.training_hardware or hardware_for_device(context.device, prices)
    _, train_hardware = prices.gpu_price(trained_on, training=True)
    rates: dict[str | None, ModelRates] = {None: _model_rates(context, run.test)}
    for planned in run.planned:  # a rung answered by another local model is timed on that model
        if planned.model is not None and planned.model not in rates:
            other = run.models.context_for(planned.model, context, f"{run.task.path}: rungs.{planned.name}")
            rates[planned.model] = _model_rates(other, run.test)
    shapes = [p.config.request_shape(rates[p.model].sizes, bool(context.labels)) for p in run.planned]
    embed_s = _embedding_seconds(run) if any(shape.embeds for shape in shapes) else 0.0
    training_rates: dict[str, float] = {}
    searched: set[str] = set()
    probe_s: float | None = None  # one model's probe answers, timed when the first tuned rung needs them
    base_probed = False
    latency_sample = run.task.spec.evaluation.latency_sample
    rungs: list[RungEstimate] = []
    for planned, shape in zip(run.planned, shapes, strict=True):
        if planned.endpoint is not None:
            rungs.append(_remote_estimate(run, planned.name, run.endpoints[planned.endpoint], shape, embed_s))
            continue
        model = rates[planned.model]
        per_example = model.per_example(shape)
        evaluation = len(run.test) * per_example
        if shape.embeds:  # the train split (the retrieval corpus) and every question are embedded once
            evaluation += (len(context.train) + len(run.test)) * embed_s
        choosing = 0.0
        space = choice_space(planned.config, context)
        if isinstance(planned.config, Searchable) and space:
            where = f"{run.task.path}: rungs.{planned.name}"  # every alternative answers the validation split
            # calibrated and uncalibrated alternatives ask the same prompts, once (content-free prompts aside)
            asked = {
                repr(sorted((k, v) for k, v in params.items() if k != "calibrate")): option
                for params, option in alternatives(planned.type, planned.config, where, space)
            }
            choosing = sum(
                len(context.validation) * model.per_example(option.request_shape(model.sizes, bool(context.labels)))
                for option in asked.values()
            )
        latency = model.latency(shape)
        train_seconds = probes = None
        tuned = bound.tuned(planned)
        if tuned is not None:
            kind = planned.type.kind
            epochs = tuned.planned_epochs(frozenset(searched))
            train_seconds = 0.0  # a rung that trains nothing of its own (an export) is not timed training
            if epochs > 0:
                if kind not in training_rates:
                    training_rates[kind] = tuned.training_rate(TRAINING_ROWS)
                epoch_tokens, judged = tuned.epoch_work()
                judging = judged * model.judging_seconds()  # one scoring pass gives the loss and the metric
                train_seconds = epochs * (epoch_tokens / training_rates[kind] + judging)
            family = tuned.search_family()
            if family is not None:
                searched.add(family)
            probe_s = _probe_seconds(run, rates[None]) if probe_s is None else probe_s
            probes = probe_s * (1 if base_probed else 2)  # the base model answers the probes once
            base_probed = True
        request_s = model.request_seconds(shape, embed_s)
        tokens = TokenSummary(prompt_mean=shape.prompt_tokens, completion_mean=_answer_tokens(context, shape))
        rate = 1.0 / request_s if request_s > 0 else None
        latency_s = latency * latency_sample
        rungs.append(
            RungEstimate(
                name=planned.name,
                prompt_tokens=shape.prompt_tokens,
                choosing_s=choosing,
                training_s=train_seconds,
                evaluation_s=evaluation,
                latency_s=latency_s,
                probes_s=probes,
                total_s=sum(v for v in (choosing, train_seconds, evaluation, latency_s, probes) if v is not None),
                p50_s=latency,
                per_1k=serving_per_1k(costs, prices, context.device, rate, tokens, tuned is not None),
                training_cost=training_cost(train_seconds, train_hardware.per_hour) if train_seconds else None,
            )
        )
    return Plan(
        version=PLAN_VERSION,
        key=plan_key(run.task.spec, run.splits.file_hashes, run.context.device),
        rates=PlanRates(
            scoring_tokens_per_s=rates[None].scoring,
            single_request_s_per_token=rates[None].single,
            generation_s_per_token=rates[None].generation,
            embedding_s_per_text=embed_s,
            training_tokens_per_s=training_rates,
        ),
        calibration_s=time.perf_counter() - started,
        rungs=rungs,
    )


def _remote_estimate(
    run: PreparedRun, name: str, endpoint: Endpoint, shape: RequestShape, embed_s: float
) -> RungEstimate:
    """A remote rung: its $ from the prompt's tokens and the endpoint's price; time here is only the local part.

    The endpoint's own time is not known before the run (its hardware, its load, the network), so the
    plan counts the embedding done here and says the rest is the endpoint's.
    """
    context = run.context
    per_1k = None
    if endpoint.price is not None:
        price = ApiPrice(
            input_per_million=endpoint.price.input_per_million, output_per_million=endpoint.price.output_per_million
        )
        per_1k = api_cost_per_1k(shape.prompt_tokens, _answer_tokens(context, shape), price)
    local = (len(context.train) + len(run.test)) * embed_s if shape.embeds else 0.0
    tuning = None
    if endpoint.hosted_fine_tuning:
        _, service = load_prices(run.task.spec.pricing).hosted_tuning_price(endpoint.hosted_fine_tuning)
        tuning = hosted_training_cost(
            training_tokens(context), endpoint.fine_tuning_epochs, service.training_per_million
        )
    return RungEstimate(
        name=name,
        endpoint=endpoint.name,
        prompt_tokens=shape.prompt_tokens,
        choosing_s=0.0,
        training_s=None,
        evaluation_s=local,
        latency_s=0.0,
        probes_s=None,
        total_s=local,
        p50_s=None,
        per_1k=per_1k,
        training_cost=tuning,
    )


def _answer_tokens(context: RungContext, shape: RequestShape) -> float:
    """Completion tokens of one answer: those it generates, or a label's (what a scored answer reports)."""
    labels = context.labels
    return shape.new_tokens or (fmean(len(context.prompts.choice_tokens(label)) for label in labels) if labels else 0)


@dataclass(frozen=True)
class ModelRates:
    """One model's rates on this machine, on the task's own prompts."""

    sizes: PromptSizes
    answer_tokens: float  # mean tokens of a label's answer (scored after the prompt)
    scoring: float | None  # batched scoring tokens/s (labelled tasks)
    generation: float  # decode seconds per generated token
    single: float  # single-request seconds per prompt token

    def per_example(self, shape: RequestShape) -> float:
        """Seconds one request of this shape takes in a batch."""
        compute = self.sizes.zero if shape.shared_prefix else shape.prompt_tokens
        seconds = compute / self.scoring if self.scoring and not shape.new_tokens else compute * self.single
        return seconds + shape.new_tokens * self.generation

    def request_seconds(self, shape: RequestShape, embed_s: float) -> float:
        """Seconds one request takes in a batch as a run times it (what its $ per 1k come from): with its
        question embedded when the rung embeds (the index itself is built once, before any request)."""
        return self.per_example(shape) + (embed_s if shape.embeds else 0.0)

    def latency(self, shape: RequestShape) -> float:
        """Seconds one request of this shape takes alone (batch size 1 decodes slower than batched rows)."""
        return shape.prompt_tokens * self.single + shape.new_tokens * self.generation * 2

    def judging_seconds(self) -> float:
        """Seconds to judge one validation example of a tuned rung: its prompt and the labels, in one pass."""
        tokens = self.sizes.tuned + self.answer_tokens
        return tokens / self.scoring if self.scoring else tokens * self.single


def _model_rates(context: RungContext, test: Sequence[Example]) -> ModelRates:
    """Time the context's model on the first test examples."""
    engine, prompts, labels = context.engine, context.prompts, context.labels
    encoded = [prompts.split(example) for example in test[:CALIBRATION_EXAMPLES]]
    answers = fmean(len(prompts.choice_tokens(label)) for label in labels) if labels else 0.0
    return ModelRates(
        sizes=prompt_sizes(prompts, context.train, test),
        answer_tokens=answers * max(len(labels), 1),
        scoring=time_scoring(engine, prompts, encoded, labels) if labels else None,
        generation=time_generation(engine, prompts, encoded[:8]),
        single=time_single(engine, prompts, encoded[0], labels),
    )


def _probe_seconds(run: PreparedRun, rates: ModelRates) -> float:
    """Seconds one model takes to answer the forgetting probes (0 when they are off or nothing is tuned)."""
    section = run.task.spec.forgetting
    if not section.enabled or rates.scoring is None:
        return 0.0
    from harness.probes.forgetting import probe_set, probe_tokens

    _, items = probe_set(section.probes, run.task.folder, section.max_items, run.task.spec.seed)
    return probe_tokens(run.context.engine.tokenizer, items) / rates.scoring


def prompt_sizes(prompts: PromptBuilder, train: Sequence[Example], test: Sequence[Example]) -> PromptSizes:
    """The task's prompt sizes, tokenized as the rungs tokenize them, on its first test examples."""
    from tuning.rows import tuned_prompts

    questions = test[:CALIBRATION_EXAMPLES]
    tuned = tuned_prompts(prompts)
    zero = [len(prompts.encode(example)) for example in questions]
    # a demonstration adds its question and answer with the chat template's turns around them (not the
    # instruction, which a prompt holds once): measured by adding one, not guessed from a prompt's size
    demos = itertools.cycle(train[:CALIBRATION_EXAMPLES] or [Example(id="", input="", target="")])
    added = [len(prompts.encode(example, [next(demos)])) - size for example, size in zip(questions, zero, strict=True)]
    return PromptSizes(
        zero=fmean(zero), tuned=fmean(len(tuned.encode(example)) for example in questions), demo=max(fmean(added), 1.0)
    )


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
