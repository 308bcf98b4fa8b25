"""Padded against packed (padding-free) training steps on CPU: useful tokens/s and the share of padding.

Each step is one micro-batch's forward and backward through `batch_loss` over a LoRA adapter, on
the same rows either way: rows of spread lengths (a uniform 16..120 tokens after a shared 48-token
prefix, three completion tokens), in micro-batches of `--batch` rows (about what the loop's 512-token
micro-batch budget holds). The tiny random llama runs always; SmolLM2-135M runs when it is available
offline (the embedded model). Results go to benchmarks/results/packing.json.

    python benchmarks/packing.py [--steps 3] [--batch 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from tests.conftest import build_tiny_llama  # the tests' tiny random llama, the same shape

PREFIX_LENGTH = 48
LORA: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


def smollm() -> Any | None:
    import torch

    from harness.inference.models import EMBEDDED_MODEL, load_model, resolve_model

    try:
        return load_model(resolve_model(EMBEDDED_MODEL), "cpu", torch.float32)
    except Exception as error:  # absent offline: the tiny model still measures the mechanism
        print(f"SmolLM2-135M skipped: {error}")
        return None


def batches(vocab: int, count: int, size: int, seed: int = 0) -> tuple[tuple[int, ...], list[list[Any]]]:
    from tuning.batch_loss import TrainRow

    rng = random.Random(seed)
    prefix = tuple(rng.randrange(3, vocab) for _ in range(PREFIX_LENGTH))
    out = []
    for _ in range(count):
        rows = []
        for _ in range(size):
            length = rng.randint(16, 120)
            rows.append(TrainRow(tuple(rng.randrange(3, vocab) for _ in range(length)), 3))
        out.append(rows)
    return prefix, out


def measure(model: Any, name: str, steps: int, size: int) -> dict[str, Any]:
    from tuning.batch_loss import batch_loss
    from tuning.methods import trainable_model
    from tuning.options import LoraOptions

    lora = trainable_model("lora", model, LoraOptions(**LORA))
    lora.train()
    prefix, work = batches(int(model.config.vocab_size), steps + 1, size)
    result: dict[str, Any] = {"model": name, "steps": steps, "batch_rows": size, "prefix_tokens": PREFIX_LENGTH}
    totals = {mode: {"seconds": 0.0, "useful": 0, "computed": 0, "padded": 0} for mode in ("padded", "packed")}
    for index, rows in enumerate(work):
        for mode in ("padded", "packed"):  # the same rows either way, alternating so drift hits both
            started = time.perf_counter()
            loss = batch_loss(rows, lora, 0, prefix, packed=mode == "packed")
            loss.loss.backward()
            lora.zero_grad(set_to_none=True)
            if index == 0:
                continue  # warm-up step
            total = totals[mode]
            total["seconds"] += time.perf_counter() - started
            total["useful"] += loss.useful_tokens
            total["computed"] += loss.computed_tokens
            total["padded"] += loss.padded_tokens
    for mode, total in totals.items():
        result[mode] = {
            "seconds": round(total["seconds"], 4),
            "useful_tokens_per_s": round(total["useful"] / total["seconds"], 1),
            "useful_tokens": total["useful"],
            "computed_tokens": total["computed"],
            "padded_tokens": total["padded"],
            "padding_share": round(total["padded"] / (total["computed"] + total["padded"]), 4),
        }
    result["speedup"] = round(result["packed"]["useful_tokens_per_s"] / result["padded"]["useful_tokens_per_s"], 3)
    return result


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = [measure(build_tiny_llama(512), "tiny-llama", args.steps * 4, args.batch)]
    real = smollm()
    if real is not None:
        runs.append(measure(real, "SmolLM2-135M", args.steps, args.batch))
    for run in runs:
        padded, packed = run["padded"], run["packed"]
        print(
            f"{run['model']}: padded {padded['useful_tokens_per_s']} useful tok/s "
            f"({padded['padding_share']:.0%} padding), packed {packed['useful_tokens_per_s']} useful tok/s "
            f"(0% padding): x{run['speedup']}"
        )
    path = write_result("packing", {"device": "cpu", "threads": args.threads, "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
