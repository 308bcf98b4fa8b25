"""The model's cost of mixing LoRA adapters in one batch, without a server: Engine.generate over stacked adapters.

16 rows of the example's tickets (chat template), greedy, every row writing `--max-tokens` tokens (end-of-turn
ignored, so every case does the same work), on the embedded SmolLM2-135M with r=16 adapters on every linear layer
(random, B ~ N(0, 0.02)), through harness/inference/batched_lora.py:
- base: no adapter (a merged adapter has the base's shapes and costs the same: the ceiling);
- 1 adapter: every row through one slot (two plain matmuls a layer);
- 4, 8, 16 adapters: rows round-robin over them in one batch (decode masked over the slots, prefill gathered).

The cases run interleaved, `--rounds` times, and each keeps its fastest round: this machine's noise only ever
slows a round down, and it moved benchmarks/serve.py's single rounds by 20 %. benchmarks/serve.py measures the
same through a real server (HTTP, batching window, tokenization); this one isolates the model's passes.

    python benchmarks/batched_lora.py [--max-tokens 64] [--rounds 3] [--adapters 1,4,8,16]

Issue 35's targets on the served numbers: mixed / merged >= 0.8 with 4 adapters, >= 0.7 with 16; 8 adapters
within 15 % of 1 at 64 tokens.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from benchmarks.serve import B_STD, tickets

ROWS = 16


def make_adapters(base: Any, folder: Path, count: int) -> list[Path]:
    """`count` random r=16 LoRA adapters on every linear layer of the base, saved as peft saves them."""
    import torch
    from peft import get_peft_model

    from tuning.methods import lora_config

    paths = []
    for index in range(count):
        torch.manual_seed(index)
        model = get_peft_model(copy.deepcopy(base), lora_config(16, 32, 0.0, "all-linear"))
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=B_STD)
        paths.append(folder / f"a{index}")
        model.save_pretrained(str(paths[-1]))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--adapters", default="1,4,8,16")
    args = parser.parse_args()
    counts = [int(n) for n in args.adapters.split(",")]

    import torch

    from harness.inference.batched_lora import BatchedLora
    from harness.inference.engine import Engine
    from harness.inference.models import load_model, load_tokenizer, resolve_model

    source = resolve_model("smollm2-135m-instruct")
    base = load_model(source, "cpu", torch.float32)
    tokenizer = load_tokenizer(source)
    with tempfile.TemporaryDirectory() as scratch:
        paths = make_adapters(base, Path(scratch), max(counts))
        lora = BatchedLora(base)
        for index, path in enumerate(paths):
            lora.load(f"a{index}", path)
    engine = Engine(base, tokenizer, routing=lora)
    engine._end_ids = {-1}  # no token ends a row: every case writes the same number of tokens
    chats = [
        tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
        for text in tickets(ROWS)
    ]
    prompts = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in chats]
    cases: dict[str, list[str] | None] = {"base": None}
    cases |= {f"{n}_adapters": [f"a{i % n}" for i in range(ROWS)] for n in counts}
    engine.generate(prompts[:2], max_new_tokens=2, adapters=["a0", "a1"])  # warm
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, names in cases.items():
            started = time.perf_counter()
            engine.generate(prompts, max_new_tokens=args.max_tokens, adapters=names)
            seconds[name].append(time.perf_counter() - started)
    best = {name: min(times) for name, times in seconds.items()}
    ratios = {name: best["base"] / best[name] for name in cases}
    lines = [
        f"{name:>11}: {best[name]:.2f} s for {ROWS} rows x {args.max_tokens} tokens, {ratios[name]:.2f} of the base"
        f" (rounds: {', '.join(f'{t:.2f}' for t in seconds[name])})"
        for name in cases
    ]
    if 1 in counts and 8 in counts:
        lines.append(f"8 adapters / 1 adapter: {best['1_adapters'] / best['8_adapters']:.2f} (target >= 0.85)")
    for line in lines:
        print(line)
    result = {
        "benchmark": "batched_lora",
        "rows": ROWS,
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "seconds": seconds,
        "best_seconds": best,
        "share_of_base": ratios,
        "lines": lines,
    }
    print(f"wrote {write_result('batched_lora', result)}")


if __name__ == "__main__":
    main()
