"""`advisor assess --plan`: what each rung will take on this machine, and cost, before running anything.

A short calibration measures this machine's rates on the task's own prompts: batched scoring tokens/s,
single-request seconds per token, decode seconds per generated token, and one training step of each
tuning method. Each rung's work is then counted (test examples x prompt tokens, train tokens x epochs)
and multiplied out. The plan is stored beside the task; the next real run puts plan and measurement
side by side in its Assessment, so the estimate's error is visible.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from statistics import fmean
from typing import Any

from advisor.assess import PreparedRun
from advisor.plan_store import PLAN_VERSION, plan_key
from advisor.rung_plan import PlannedRung
from harness.calibration import time_generation, time_scoring, time_single
from harness.pricing import hardware_for_device, load_prices, self_hosted_cost_per_1k, training_cost
from harness.types import Example

CALIBRATION_EXAMPLES = 12
TRAINING_ROWS = 8


def make_plan(run: PreparedRun) -> dict[str, Any]:
    """Calibrate, then estimate every planned rung: seconds (evaluation, training), tokens, $ per 1k."""
    started = time.perf_counter()
    context = run.context
    engine, prompts, labels = context.engine, context.prompts, context.labels
    sample = list(run.test[:CALIBRATION_EXAMPLES])
    encoded = [prompts.split(example) for example in sample]
    zero_tokens = fmean(len(a) + len(b) for a, b in encoded)
    fixed = len(prompts.encode(Example(id="", input="", target="")))  # instruction and template, once per prompt
    demo_tokens = max(_row_tokens(run) - fixed, 1.0)  # a demonstration adds its text and answer, not the instruction
    scoring = time_scoring(engine, prompts, encoded, labels) if labels else None
    generation = time_generation(engine, prompts, encoded[:8])
    single = time_single(engine, prompts, encoded[0], labels)
    prices = load_prices(run.task.spec.pricing)
    costs = run.task.spec.costs
    _, hardware = prices.gpu_price(costs.serving_hardware)
    trained_on = costs.training_hardware or hardware_for_device(context.device, prices)
    _, train_hardware = prices.gpu_price(trained_on, training=True)
    embed_s = _embedding_seconds(run) if any(_embeds(p) for p in run.planned) else 0.0
    training_rates: dict[str, float] = {}
    rungs = []
    for planned in run.planned:
        config = planned.config
        method = planned.type.kind
        tokens = _prompt_tokens(planned, zero_tokens, demo_tokens)
        mode = getattr(config, "mode", "auto")
        generating = mode == "generate" or (mode == "auto" and not labels)
        new_tokens = getattr(config, "max_new_tokens", 16) if generating else 0
        compute_tokens = zero_tokens if _shared_prefix(planned) else tokens
        per_example = compute_tokens / scoring if scoring and not generating else compute_tokens * single
        per_example += new_tokens * generation
        evaluation = len(run.test) * per_example
        if _embeds(planned):  # the train split (the retrieval corpus) and every question are embedded once
            evaluation += (len(context.train) + len(run.test)) * embed_s
        latency = tokens * single + new_tokens * generation * 2  # batch size 1 decodes slower than batched rows
        train_seconds = None
        if planned.type.step >= 3:
            predictor: Any = planned.type.build(config, context)
            if method not in training_rates:
                training_rates[method] = _training_rate(predictor)
            prefix, rows, validation = predictor.encoded_rows()
            epoch_tokens = sum(len(prefix) + len(row.tokens) for row in rows)
            judging = len(validation) * (1 / scoring * zero_tokens if scoring else zero_tokens * single)
            train_seconds = predictor.planned_epochs() * (epoch_tokens / training_rates[method] + judging)
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
            "scoring_tokens_per_s": scoring,
            "single_request_s_per_token": single,
            "generation_s_per_token": generation,
            "embedding_s_per_text": embed_s,
            "training_tokens_per_s": training_rates,
        },
        "calibration_s": time.perf_counter() - started,
        "rungs": rungs,
    }


def _prompt_tokens(planned: PlannedRung, zero_tokens: float, demo_tokens: float) -> float:
    config = planned.config
    kind = planned.type.kind
    if kind == "few_shot":
        return zero_tokens + getattr(config, "k", 4) * demo_tokens
    if kind == "rag":
        passages = getattr(config, "top_k", 4) * min(demo_tokens or getattr(config, "chunk_words", 120) * 1.3, 512)
        return zero_tokens + min(passages, getattr(config, "max_context_tokens", 768))
    return zero_tokens


def _shared_prefix(planned: PlannedRung) -> bool:
    """Fixed demonstrations are one cached prefix: only the question is computed per example."""
    return planned.type.kind == "few_shot" and getattr(planned.config, "selection", "") == "fixed"


def _training_rate(predictor: Any) -> float:
    """Useful tokens per second of this rung's method, from a step on a few train rows (after a warm-up step)."""
    from tuning.loop import LoopSettings, Validation, train

    model = predictor.fresh_trainable_model()
    prefix, rows, _ = predictor.encoded_rows()
    rows = rows[:TRAINING_ROWS]
    settings = LoopSettings(epochs=1, batch_tokens=10**6, max_batch_size=len(rows), checkpoint_every=10**6)
    pad = predictor.context.engine.pad_id
    with tempfile.TemporaryDirectory() as folder:
        train(model, rows[:2], Validation(), settings, Path(folder) / "warm", pad, prefix=prefix)
        started = time.perf_counter()
        report = train(model, rows, Validation(), settings, Path(folder) / "timed", pad, prefix=prefix)
    return report.useful_tokens / max(time.perf_counter() - started, 1e-9)


def _row_tokens(run: PreparedRun) -> float:
    """Mean tokens of a zero_shot prompt and its answer: also a demonstration's rough size."""
    prompts = run.context.prompts
    examples = run.context.train[:32]
    sizes = [len(prompts.encode(e)) + len(prompts.choice_tokens(e.target)) for e in examples]
    return fmean(sizes) if sizes else 0.0


def _embeds(planned: PlannedRung) -> bool:
    """Rungs that embed text: similar demonstrations and retrieval."""
    kind, config = planned.type.kind, planned.config
    return kind == "rag" or (kind == "few_shot" and getattr(config, "selection", "") == "similar")


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
