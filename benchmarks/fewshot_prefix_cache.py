"""Few-shot k=8 `fixed` on SST-2 dev, with and without the shared-prefix KV cache.

The eight demonstrations (balanced, seeded, from SST-2 train) come first in every prompt, in the
lm-eval text format (`Review: ...\\nSentiment: positive`). Both runs score the same tokens: prefix
and query are tokenized separately in both. The cached run computes the prefix once; the other
feeds prefix + query whole for every example.

    python benchmarks/fewshot_prefix_cache.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import require_dataset, timed_scoring, write_result
from harness.environment import choose_placement, describe_hardware
from harness.inference.answering import Prompt
from harness.inference.engine import Engine
from harness.inference.models import EMBEDDED_MODEL, load_causal_lm, resolve_model
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.retrieval.demonstrations import DemoSelector, example_text
from harness.types import Example

LABELS = ("negative", "positive")


def read_tsv(relative: str, text_column: str, limit: int | None = None) -> list[Example]:
    path = require_dataset(relative)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    examples = [Example(f"{path.stem}-{i}", r[text_column], LABELS[int(r["label"])]) for i, r in enumerate(rows)]
    return examples[:limit] if limit else examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N dev rows")
    args = parser.parse_args()
    dev = read_tsv("sst2/dev.tsv", "content", args.limit)
    # demonstrations from the full sentences of train: phrases make poor examples
    train = [e for e in read_tsv("sst2/train.tsv", "sentence") if len(example_text(e).split()) >= 8][:2000]
    demos = DemoSelector(train, k=8, selection="fixed", balanced=True, seed=0).choose(dev[:1])[0]
    placement = choose_placement("cpu")
    model, tokenizer = load_causal_lm(resolve_model(EMBEDDED_MODEL), placement.device, placement.dtype)
    fmt = PromptFormat(
        template="Review: {input}\nSentiment:", chat=False, labels=LABELS, list_labels=False, choice_prefix=" "
    )
    builder = PromptBuilder(tokenizer, fmt)
    split = [builder.split(e, demos) for e in dev]
    whole: list[Prompt] = [((), list(prefix) + list(query)) for prefix, query in split]
    engine = Engine(model, tokenizer)
    uncached = timed_scoring(engine, builder, whole, dev, LABELS)
    cached = timed_scoring(engine, builder, split, dev, LABELS)
    largest = max(
        abs(a[label] - b[label])
        for a, b in zip(cached.pop("logprobs"), uncached.pop("logprobs"), strict=True)
        for label in LABELS
    )
    result = {
        "benchmark": "fewshot_prefix_cache",
        "dataset": "sst2 dev",
        "n": len(dev),
        "k": 8,
        "prefix_tokens": len(split[0][0]),
        "mean_query_tokens": sum(len(q) for _, q in split) / len(split),
        "cached": cached,
        "uncached": uncached,
        "speedup": cached["examples_per_s"] / uncached["examples_per_s"],
        "max_logprob_difference": largest,
        "hardware": describe_hardware(placement),
    }
    path = write_result("fewshot_prefix_cache", result)
    print(
        f"SST-2 dev, {len(dev)} rows, k=8 fixed; prefix {result['prefix_tokens']} tokens, "
        f"query {result['mean_query_tokens']:.0f} tokens on average"
    )
    for name in ("uncached", "cached"):
        run = result[name]
        rate = f"{run['examples_per_s']:.1f} examples/s ({run['seconds']:.1f} s)"
        print(f"  {name:9}: accuracy {run['accuracy']:.4f}  {rate}")
    print(f"  speed-up {result['speedup']:.2f}x; largest log-prob difference {largest:.2e}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
