"""GPU check: batched scoring throughput through Engine.score, bf16 and fp32 (see gpu_check.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from benchmarks.gpu_setup import _error, _free, _memory, _reset_peak, _sync, load_base, synthetic_bodies

# ---- evaluation ----------------------------------------------------------------------------------


def part_eval(ctx: dict[str, Any]) -> dict[str, Any]:
    from harness.inference.engine import ChoiceRequest, Engine

    device, dry = ctx["device"], ctx["dry"]
    header = tuple(ctx["tokenizer"]("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    bodies = synthetic_bodies(32 if dry else 4096, ctx["vocab"], seed=1)
    choices = tuple(ctx["labels"])
    requests = [ChoiceRequest(tuple(body) + header, choices) for body in bodies]
    prefix = ctx["prefix"]
    budgets = [("default_4096x32", 4096, 32)] + ([] if dry else [("large_32768x256", 32768, 256)])
    dtypes = [getattr(torch, name) for name in ctx["eval_dtypes"]]
    out: dict[str, Any] = {
        "code_path": "ours: harness.inference.engine.Engine.score (tree-masked choice blocks, shared prefix KV)",
        "requests": len(requests),
        "choices_per_request": len(choices),
        "prefix_tokens": len(prefix),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "runs": {},
    }
    for dtype in dtypes:
        name = str(dtype).removeprefix("torch.")
        try:
            model, _ = load_base(ctx["folder"], device, dtype)
        except Exception as error:
            out["runs"][name] = _error(error)
            continue
        for label, tokens, size in budgets:
            key = f"{name}/{label}"
            try:
                engine = Engine(model, ctx["tokenizer"], max_batch_tokens=tokens, max_batch_size=size)
                out["runs"][key] = timed_scoring(engine, requests, prefix, ctx["seconds"] / 4, device, dry)
            except Exception as error:
                out["runs"][key] = _error(error)
            ctx["checkpoint"]()
        del model
        _free(device)
    bf, fp = out["runs"].get("bfloat16/default_4096x32", {}), out["runs"].get("float32/default_4096x32", {})
    if bf.get("first_scores") and fp.get("first_scores"):
        out["bf16_vs_fp32_max_abs_logprob_diff_first_requests"] = round(
            max(
                abs(a - b)
                for x, y in zip(bf["first_scores"], fp["first_scores"], strict=True)
                for a, b in zip(x, y, strict=True)
            ),
            4,
        )
    return out


def timed_scoring(
    engine: Any, requests: Sequence[Any], prefix: Sequence[int], seconds: float, device: str, dry: bool
) -> dict[str, Any]:
    """Score chunks of requests until `seconds`; the first chunk (prefix KV, kernels) is a warm-up, untimed."""
    warm = requests[: 8 if dry else 64]
    first = engine.score(warm, prefix)
    _sync(device)
    _reset_peak(device)
    chunk = 16 if dry else 512
    scored_tokens = scored = 0
    started = time.perf_counter()
    passes = 1 if dry else 4
    for start in range(0, len(requests) * passes, chunk):  # passes over the same requests until `seconds`
        part = requests[start % len(requests) : start % len(requests) + chunk]
        engine.score(part, prefix)
        scored += len(part)
        scored_tokens += sum(len(prefix) + len(r.context) + sum(len(c) for c in r.choices) for r in part)
        if time.perf_counter() - started > seconds:
            break
    _sync(device)
    elapsed = time.perf_counter() - started
    return {
        "max_batch_tokens": engine.max_batch_tokens,
        "max_batch_size": engine.max_batch_size,
        "requests_scored": scored,
        "seconds": round(elapsed, 3),
        "scored_tokens": scored_tokens,
        "scored_tokens_per_s": round(scored_tokens / elapsed, 1),
        "requests_per_s": round(scored / elapsed, 1),
        "first_scores": [[round(s, 4) for s in row] for row in first[:4]],
        **_memory(device),
    }
