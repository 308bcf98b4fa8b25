"""Short timings of this machine: scoring throughput, single-request time and generation speed.

The plan (`advisor assess --plan`) multiplies these rates by the work each rung will do. Each timing
runs after a warm-up call, so one-off allocations are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from harness.inference.answering import answer_by_generating, answer_by_scoring
from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder

Prompt = tuple[list[int], list[int]]


def time_scoring(engine: Engine, prompts: PromptBuilder, encoded: Sequence[Prompt], labels: Sequence[str]) -> float:
    """Prompt tokens per second when scoring these prompts' labels in batches."""
    answer_by_scoring(engine, prompts, encoded[:1], labels)  # warm-up
    started = time.perf_counter()
    answer_by_scoring(engine, prompts, encoded, labels)
    seconds = time.perf_counter() - started
    return sum(len(a) + len(b) for a, b in encoded) / max(seconds, 1e-9)


def time_single(engine: Engine, prompts: PromptBuilder, prompt: Prompt, labels: Sequence[str]) -> float:
    """Seconds per prompt token for one request at batch size 1."""
    started = time.perf_counter()
    if labels:
        answer_by_scoring(engine, prompts, [prompt], labels)
    else:
        answer_by_generating(engine, prompts, [prompt], 4)
    return (time.perf_counter() - started) / max(1, len(prompt[0]) + len(prompt[1]))


def time_generation(engine: Engine, prompts: PromptBuilder, encoded: Sequence[Prompt], new_tokens: int = 8) -> float:
    """Seconds per generated token per row, decoding a batch (the prompt's own cost subtracted roughly)."""
    answer_by_generating(engine, prompts, encoded[:1], 2)  # warm-up
    started = time.perf_counter()
    answer_by_generating(engine, prompts, encoded, 1)
    prefill = time.perf_counter() - started
    started = time.perf_counter()
    answer_by_generating(engine, prompts, encoded, new_tokens)
    decode = max(time.perf_counter() - started - prefill, 1e-6)
    return decode / (len(encoded) * max(new_tokens - 1, 1))
