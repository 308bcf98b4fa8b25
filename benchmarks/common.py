"""Helpers shared by the benchmark scripts: where the shared data sets are, and where results go."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def shared_datasets() -> Path:
    """../shared/datasets beside the project (LADDER_DATASETS overrides it)."""
    return Path(os.environ.get("LADDER_DATASETS", ROOT.parent / "shared" / "datasets"))


def require_dataset(relative: str) -> Path:
    """The path of a shared data set file; exits with a clear message when it is absent."""
    path = shared_datasets() / relative
    if not path.exists():
        print(f"skipped: {path} not found (the shared data sets live in ../shared/datasets beside the project)")
        sys.exit(0)
    return path


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write the benchmark's JSON to benchmarks/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


def timed_scoring(
    engine: Any, builder: Any, encoded: Sequence[Any], examples: Sequence[Any], labels: Sequence[str]
) -> dict[str, Any]:
    """Score every prompt by its labels; accuracy, wall time, throughput, tokens and log-probs."""
    from harness.inference.answering import answer_by_scoring

    started = time.perf_counter()
    outputs = answer_by_scoring(engine, builder, encoded, labels)
    seconds = time.perf_counter() - started
    correct = sum(o.text == e.target for o, e in zip(outputs, examples, strict=True))
    return {
        "accuracy": correct / len(examples),
        "seconds": seconds,
        "examples_per_s": len(examples) / seconds,
        "prompt_tokens": sum(o.prompt_tokens for o in outputs),
        "logprobs": [o.detail["logprobs"] for o in outputs],
    }
