"""The data audit on CLINC150: 15,000 train and 4,500 test utterances over 150 intents (in-scope only).

Runs every check of `harness.audit` (near-duplicates and train/test leakage through the real
all-MiniLM-L6-v2 embedder and FAISS; token lengths with the embedded model's tokenizer), then
prints where the time went (embedding vs search vs the rest) and what it found.

    python benchmarks/audit_clinc150.py [--near-threshold 0.95] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import require_dataset, write_result
from harness.audit import AuditSettings, audit_examples
from harness.inference.models import EMBEDDED_MODEL, resolve_model
from harness.retrieval.embedding import Embedder
from harness.types import Example


def load_clinc(path: Path, limit: int | None) -> tuple[list[Example], list[Example]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    train = [Example(f"{i}", text, intent) for i, (text, intent) in enumerate(data["train"])]
    test = [Example(f"{i}", text, intent) for i, (text, intent) in enumerate(data["test"])]
    return (train[:limit], test[:limit]) if limit else (train, test)


def token_counter() -> tuple[Any, int]:
    """Token counts with the embedded model's tokenizer, and its context length."""
    from transformers import AutoConfig, AutoTokenizer

    source = resolve_model(EMBEDDED_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    context = int(AutoConfig.from_pretrained(source.path).max_position_embeddings)

    def count(texts: Any) -> list[int]:
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    return count, context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--near-threshold", type=float, default=0.95)
    parser.add_argument("--limit", type=int, help="only the first N rows of each split (a quick look)")
    args = parser.parse_args()
    train, test = load_clinc(require_dataset("clinc150/data_full.json"), args.limit)
    labels = sorted({e.target for e in [*train, *test]})
    count, context = token_counter()
    settings = AuditSettings(near_threshold=args.near_threshold, train_max_length=512, context_length=context)
    load_before = os.getloadavg()[0]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    findings = audit_examples(
        train, (), test, labels=labels, tokenizer_lengths=count, embedder=Embedder, settings=settings, timings=timings
    )
    wall = time.perf_counter() - started
    rest = timings["total_s"] - timings["embedder_load_s"] - timings["embed_s"] - timings["search_s"]
    seconds = {
        "total": round(wall, 2),
        "embedder_load": round(timings["embedder_load_s"], 2),
        "embedding": round(timings["embed_s"], 2),
        "near_search": round(timings["search_s"], 2),
        "rest": round(rest, 2),
    }
    result = {
        "dataset": "clinc150 data_full.json (train, test; in-scope)",
        "rows": {"train": len(train), "test": len(test)},
        "classes": len(labels),
        "settings": {"near_threshold": args.near_threshold, "train_max_length": 512, "context_length": context},
        "machine": {"cpus": os.cpu_count(), "load_average_before": round(load_before, 2)},
        "seconds": seconds,
        "embedded_texts_per_s": round((len(train) + len(test)) / max(timings["embed_s"], 1e-9), 1),
        "findings": [f.to_json() for f in findings],
    }
    path = write_result("audit_clinc150", result)
    print(f"CLINC150: {len(train)} train + {len(test)} test rows, {len(labels)} classes ({os.cpu_count()} CPUs)")
    print("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items()))
    for f in findings:
        print(f"  {f.severity:<7} {f.code:<24} {f.count:>6}  {f.message}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
