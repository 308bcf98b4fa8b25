"""Zero-shot SST-2 dev by log-likelihood: our engine against lm-evaluation-harness, same data, model, prompt.

The setup is lm-eval's multiple-choice one: prompt `Review: {sentence}\nSentiment:`, choices
` negative` / ` positive`, no chat template, float32 on this CPU. Both score the same converted
weights of the embedded model. Timing is of the scoring phase only (model loading excluded), and the
two run one after the other, never at once. When lm-eval is not installed (`pip install -e '.[bench]'`)
ours is reported alone.

    python benchmarks/eval_scoring.py [--limit N] [--no-peer]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import require_dataset, timed_scoring, write_result
from harness.environment import choose_placement, describe_hardware
from harness.inference.engine import Engine
from harness.inference.models import EMBEDDED_MODEL, load_causal_lm, resolve_model
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.types import Example

TEMPLATE = "Review: {input}\nSentiment:"
LABELS = ("negative", "positive")


def read_sst2(limit: int | None) -> list[Example]:
    path = require_dataset("sst2/dev.tsv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    examples = [Example(f"dev-{i}", row["content"], LABELS[int(row["label"])]) for i, row in enumerate(rows)]
    return examples[:limit] if limit else examples


def run_ours(model_path: Any, examples: list[Example]) -> dict[str, Any]:
    placement = choose_placement("cpu")
    model, tokenizer = load_causal_lm(model_path, placement.device, placement.dtype)
    fmt = PromptFormat(template=TEMPLATE, chat=False, labels=LABELS, list_labels=False, choice_prefix=" ")
    builder = PromptBuilder(tokenizer, fmt)
    engine = Engine(model, tokenizer)
    run = timed_scoring(engine, builder, [builder.split(e) for e in examples], examples, LABELS)
    run.pop("logprobs")
    return {
        **run,
        "hardware": describe_hardware(placement),
    }


def run_lm_eval(model_dir: str, examples: list[Example]) -> dict[str, Any]:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "dev.jsonl"
        rows = [{"sentence": e.input, "label": LABELS.index(e.target)} for e in examples]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        (Path(folder) / "sst2_local.yaml").write_text(
            "task: sst2_local\n"
            "dataset_path: json\n"
            f"dataset_kwargs:\n  data_files:\n    validation: {data}\n"
            "output_type: multiple_choice\n"
            "validation_split: validation\n"
            'doc_to_text: "Review: {{sentence}}\\nSentiment:"\n'
            "doc_to_target: label\n"
            'doc_to_choice: ["negative", "positive"]\n'
            'target_delimiter: " "\n'
            "metric_list:\n  - metric: acc\n",
            encoding="utf-8",
        )
        lm = HFLM(pretrained=model_dir, dtype="float32", batch_size=16, device="cpu")
        manager = TaskManager(include_path=folder, include_defaults=False)
        started = time.perf_counter()
        results = lm_eval.simple_evaluate(model=lm, tasks=["sst2_local"], task_manager=manager, log_samples=False)
        seconds = time.perf_counter() - started
    accuracy = results["results"]["sst2_local"]["acc,none"]
    return {"accuracy": accuracy, "seconds": seconds, "examples_per_s": len(examples) / seconds, "version": "0.4.13"}


def _line(name: str, run: dict[str, Any]) -> str:
    return f"  {name}: accuracy {run['accuracy']:.4f}  {run['examples_per_s']:.1f} examples/s ({run['seconds']:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N dev rows")
    parser.add_argument("--no-peer", action="store_true", help="skip lm-evaluation-harness even when installed")
    args = parser.parse_args()
    examples = read_sst2(args.limit)
    source = resolve_model(EMBEDDED_MODEL)
    ours = run_ours(source, examples)
    result: dict[str, Any] = {"benchmark": "eval_scoring", "dataset": "sst2 dev", "n": len(examples), "ours": ours}
    if args.no_peer or importlib.util.find_spec("lm_eval") is None:
        result["peer"] = None
        result["peer_note"] = "lm-evaluation-harness not run (install with: pip install -e '.[bench]')"
    else:
        peer = run_lm_eval(source.path, examples)
        result["peer"] = peer
        result["speedup"] = ours["examples_per_s"] / peer["examples_per_s"]
        result["accuracy_difference_points"] = 100 * (ours["accuracy"] - peer["accuracy"])
    path = write_result("eval_scoring", result)
    print(f"SST-2 dev, {len(examples)} rows, {ours['hardware']['cpu']}, {ours['hardware']['threads']} threads")
    print(_line("ladder ", ours))
    if result["peer"]:
        print(_line("lm-eval", result["peer"]))
        difference = result["accuracy_difference_points"]
        print(f"  speed-up {result['speedup']:.2f}x, accuracy difference {difference:+.2f} points")
    else:
        print(f"  {result['peer_note']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
