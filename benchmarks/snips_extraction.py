"""Extraction benchmark: SNIPS utterances to their slot values as JSON, through `advisor assess`.

Reads ../shared/datasets/snips_nlu (derived JSONL; CC0), takes a seeded, intent-balanced sample of
train and validate rows, writes them with a task file to a temporary folder, and assesses zero-shot,
few-shot (the most similar train utterances) and a LoRA adapter on them. Reports field-level
precision/recall/F1, JSON validity and exact match with 95% CIs, plus latency, tokens and cost.

    python benchmarks/snips_extraction.py [--train-per-intent 50] [--test-per-intent 15]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import require_dataset, write_result

TASK = """\
name: snips-slots
type: extraction
instruction: >-
  Extract the slot values from the user's request as one JSON object on a single line that maps
  slot names to the exact words of the request. Use only these slot names: {slots}.
prompt: {{template: "Request: {{input}}"}}
data: {{train: train.jsonl, test: test.jsonl, fields: {{input: text, target: slots, id: id}}}}
rungs:
  - {{rung: zero_shot, max_new_tokens: 64}}
  - {{rung: few_shot, name: few_shot_similar, k: 4, selection: similar, max_new_tokens: 64}}
  - {{rung: lora, r: 16, max_new_tokens: 64}}
forgetting: {{enabled: false}}
evaluation: {{latency_sample: 8}}
seed: 0
"""


def slots_of(row: dict[str, Any]) -> dict[str, Any]:
    """{slot name: words}; a slot named twice keeps every value, in order, as a list."""
    values: dict[str, list[str]] = defaultdict(list)
    for entity in row["entities"]:
        values[entity["entity"]].append(entity["text"])
    return {name: words[0] if len(words) == 1 else words for name, words in values.items()}


def sample(path: Path, per_intent: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    by_intent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            by_intent[row["intent"]].append(row)
    chosen = []
    for intent in sorted(by_intent):
        rows = by_intent[intent]
        chosen.extend(random.Random(f"{seed}-{intent}").sample(rows, min(per_intent, len(rows))))
    return [{"id": f"{prefix}{i}", "text": r["text"], "slots": slots_of(r)} for i, r in enumerate(chosen)]


class QuietHooks:
    """Prints each rung as it starts and ends."""

    def __init__(self) -> None:
        self.started = 0.0

    def stage(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def rung_started(self, name: str, total: int) -> None:
        self.started = time.perf_counter()
        print(f"  {name}: {total} examples...", flush=True)

    def advance(self, count: int) -> None:
        pass

    def rung_finished(self, name: str) -> None:
        print(f"  {name}: done in {time.perf_counter() - self.started:.0f} s", flush=True)

    def training(self, rung: str, step: int, total: int, loss: float, tokens_per_s: float) -> None:
        pass

    def trial(self, rung: str, number: int, trials: int, params: dict[str, Any]) -> None:
        print(f"  {rung}: trial {number + 1} of {trials} {params}", flush=True)

    def evaluated(self, rung: str, epoch: float, loss: float, metric: float | None, metric_name: str) -> None:
        print(f"  {rung}: epoch {epoch:g} validation loss {loss:.3f} {metric_name} {metric}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-intent", type=int, default=50)
    parser.add_argument("--test-per-intent", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_file = require_dataset("snips_nlu/snips_train.jsonl")
    test_file = require_dataset("snips_nlu/snips_validate.jsonl")

    from advisor.measure.assess import assess
    from advisor.measure.prepare import AssessOptions

    train = sample(train_file, args.train_per_intent, args.seed, "train-")
    test = sample(test_file, args.test_per_intent, args.seed, "test-")
    slot_names = sorted({name for row in train for name in row["slots"]})
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
            (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        (root / "task.yaml").write_text(TASK.format(slots=", ".join(slot_names)), encoding="utf-8")
        started = time.perf_counter()
        assessment = assess(root / "task.yaml", AssessOptions(), QuietHooks())
        seconds = time.perf_counter() - started
    rungs = {}
    for rung in assessment.rungs:
        rungs[rung.name] = {
            "metrics": {name: metric.model_dump() for name, metric in rung.metrics.items()},
            "p50_s": rung.latency.p50_s,
            "p95_s": rung.latency.p95_s,
            "examples_per_s": rung.latency.batched_examples_per_s,
            "prompt_tokens": rung.tokens.prompt_mean,
            "completion_tokens": rung.tokens.completion_mean,
            "cost_per_1k": rung.cost.per_1k if rung.cost else None,
            "training_seconds": rung.training.seconds if rung.training else None,
        }
        f1, m = rung.metrics["field_f1"], rung.metrics
        print(
            f"{rung.name:18} field F1 {f1.value:.3f} [{f1.ci_low:.3f}, {f1.ci_high:.3f}]"
            f"  P {m['field_precision'].value:.3f}  R {m['field_recall'].value:.3f}"
            f"  valid JSON {m['json_valid'].value:.3f}  exact {m['exact_match'].value:.3f}"
            f"  p50 {rung.latency.p50_s or 0:.2f} s"
            f"  tokens {rung.tokens.prompt_mean:.0f} in, {rung.tokens.completion_mean:.0f} out"
        )
    result = {
        "benchmark": "snips_extraction",
        "train_rows": len(train),
        "test_rows": len(test),
        "slot_names": len(slot_names),
        "seconds": seconds,
        "environment": assessment.environment.model_dump(),
        "rungs": rungs,
        "comparisons": [c.model_dump() for c in assessment.comparisons],
    }
    print(f"wrote {write_result('snips_extraction', result)} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
