"""Running a predictor over examples: resumable through the store, timed honestly."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from harness.data.hashing import content_hash
from harness.data.store import Store
from harness.distributed import current_ranks, from_main, gather, shard, unshard
from harness.inference.batching import chunks
from harness.metric_types import Scorer
from harness.rungs import Predictor
from harness.types import Example, Output, Record

Progress = Callable[[int], None]


@dataclass(frozen=True)
class RunResult:
    """Records in example order, single-request latencies, how much was computed afresh, and where the time went."""

    records: list[Record]
    single_latencies_s: list[float]
    computed: int
    reused: int
    phases: dict[str, float] = field(default_factory=dict)  # seconds: prepare (training, indexes), test, latency


def example_key(example: Example) -> str:
    """What determines a rung's output for an example: its id and its input (not its target)."""
    return content_hash(example.id, example.input)


def run_predictor(
    predictor: Predictor,
    examples: Sequence[Example],
    store: Store,
    scorer: Scorer,
    *,
    chunk_size: int = 32,
    latency_sample: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
) -> RunResult:
    """Outputs for every example (stored ones reused), scored; plus a single-request latency sample.

    Each chunk is committed to the store as soon as it finishes, so a killed run resumes there.
    A batched output's latency is its share of its chunk's wall time; single-request latency is
    measured separately at batch size 1 on a seeded sample. An output the predictor timed itself
    (a remote request, network included) keeps its own latency, and the sample is drawn from those.
    """
    fingerprint = predictor.fingerprint()
    example_keys = [example_key(e) for e in examples]
    keys = [content_hash(fingerprint, k, "batched") for k in example_keys]
    outputs = store.get_outputs(keys)
    # under a launch every rank works on what rank 0 lacks, each on its share of every chunk
    missing = from_main([i for i, key in enumerate(keys) if key not in outputs])
    if progress:
        progress(len(examples) - len(missing))
    phases: dict[str, float] = {}
    if missing:
        store.must_compute(f"{len(missing)} answers of {fingerprint}")
        started = time.perf_counter()
        predictor.prepare()  # training, index building, model loading: not part of any request's latency
        phases["prepare"] = time.perf_counter() - started
    answering = time.perf_counter()
    for chunk in chunks(missing, chunk_size * current_ranks().world_size):
        mine = shard(chunk)
        started = time.perf_counter()
        produced = predictor.predict([examples[i] for i in mine]) if mine else []
        share = (time.perf_counter() - started) / max(len(mine), 1)
        answered = [(i, o if o.timed else replace(o, latency_s=share)) for i, o in zip(mine, produced, strict=True)]
        items = [(keys[i], example_keys[i], out) for i, out in unshard(gather(answered))]
        store.put_outputs(fingerprint, "batched", items)
        outputs.update({key: out for key, _, out in items})
        if progress:
            progress(len(chunk))
    if missing:
        phases["test"] = time.perf_counter() - answering
    timed_each = bool(examples) and all(outputs[key].timed for key in keys)
    sampling = time.perf_counter()
    if timed_each:
        latencies = [outputs[keys[i]].latency_s for i in _latency_sample(len(examples), latency_sample, seed)]
    else:
        latencies = _single_request_latencies(
            predictor, fingerprint, examples, example_keys, store, latency_sample, seed
        )
    if time.perf_counter() - sampling > 0.5:  # a sample read from the store takes no time worth naming
        phases["latency"] = time.perf_counter() - sampling
    records = []
    for example, key in zip(examples, keys, strict=True):
        output = outputs[key]
        records.append(Record(example=example, output=output, score=scorer(example, output)))
    return RunResult(
        records=records,
        single_latencies_s=latencies,
        computed=len(missing),
        reused=len(examples) - len(missing),
        phases=phases,
    )


def _single_request_latencies(
    predictor: Predictor,
    fingerprint: str,
    examples: Sequence[Example],
    example_keys: list[str],
    store: Store,
    sample: int,
    seed: int,
) -> list[float]:
    if sample <= 0 or not examples:
        return []
    chosen = _latency_sample(len(examples), sample, seed)
    keys = {i: content_hash(fingerprint, example_keys[i], "single") for i in chosen}
    stored = store.get_outputs(list(keys.values()))
    todo = from_main([i for i in chosen if keys[i] not in stored])
    if todo:
        store.must_compute(f"the single-request latency sample of {fingerprint}")
        predictor.prepare()  # on every rank: preparing a tuned rung may train it, which takes them all
    if todo and current_ranks().is_main:  # one process measures: latency is a single request's, alone
        predictor.predict([examples[todo[0]]])  # warm-up: first-call allocations are not latency
        for i in todo:
            started = time.perf_counter()
            output: Output = predictor.predict([examples[i]])[0]
            timed = replace(output, latency_s=time.perf_counter() - started)
            store.put_outputs(fingerprint, "single", [(keys[i], example_keys[i], timed)])
            stored[keys[i]] = timed
    return from_main([stored[keys[i]].latency_s for i in chosen] if current_ranks().is_main else [])


def _latency_sample(count: int, sample: int, seed: int) -> list[int]:
    """The seeded indices whose single-request latency is reported."""
    return sorted(random.Random(seed).sample(range(count), min(max(sample, 0), count)))
