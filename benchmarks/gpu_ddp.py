"""GPU check of the data-parallel path: LoRA and QLoRA trained by tuning.loop.train under torchrun.

Launched by `gpu_check.py --parts ddp` (or by hand) with 1 and 2 ranks on whatever GPUs there are;
with one GPU both ranks share it and the gradients are summed over gloo (NCCL needs a GPU per rank):
that checks the code path and the per-rank memory, not the speed-up, which needs a GPU per rank.

    python benchmarks/gpu_ddp.py --folder MODEL_DIR --out DIR [--ranks 1,2] [--methods lora,qlora] [--rows 512]
    (each run: torchrun --nproc_per_node N benchmarks/gpu_ddp.py --worker ...)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(folder: Path, method: str, rows: int, out: Path) -> None:
    """One rank: load the base, wrap it, train one epoch over the synthetic rows, report from rank 0."""
    import torch

    from benchmarks.gpu_setup import LORA_OPTIONS, label_tokens, load_base, load_tokenizer, training_rows
    from harness.distributed import current_ranks, gather, join_process_group
    from tuning.loop import LoopSettings, Validation, train
    from tuning.methods import quantized_base, wrap_lora
    from tuning.options import LoraOptions

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ranks = join_process_group(device)
    tokenizer = load_tokenizer(folder)
    if method == "qlora":
        base = quantized_base(str(folder), device)
    else:
        base, _ = load_base(folder, device, torch.bfloat16 if device == "cuda" else torch.float32)
    torch.manual_seed(0)
    model = wrap_lora(base, LoraOptions(**LORA_OPTIONS), ())
    data = training_rows(rows, len(tokenizer), label_tokens(tokenizer), seed=0)
    settings = LoopSettings(epochs=1, batch_tokens=8192, max_batch_size=64, micro_batch_tokens=8192)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as checkpoints:
        started = time.perf_counter()
        report = train(model, data, Validation(), settings, Path(checkpoints), tokenizer.pad_token_id or 0)
        seconds = time.perf_counter() - started
    peak = round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None
    peaks = gather(peak)
    if current_ranks().is_main:
        result = {
            "method": method,
            "ranks": ranks.world_size,
            "device": device,
            "backend": os.environ.get("LADDER_DIST_BACKEND", "nccl" if device == "cuda" else "gloo"),
            "steps": report.steps,
            "useful_tokens": report.useful_tokens,
            "seconds": round(seconds, 2),
            "useful_tokens_per_s": round(report.useful_tokens / seconds, 1),
            "first_loss": round(report.train_losses[0], 4),
            "final_loss": round(report.train_losses[-1], 4),
            "peak_gpu_mem_mib": peaks[0],
            "peak_gpu_mem_mib_per_rank": peaks,
            "code_path": f"tuning.loop.train under torchrun ({ranks.world_size} ranks)",
        }
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")


def launch(folder: Path, out_dir: Path, ranks: int, method: str, rows: int, timeout: float) -> dict[str, Any]:
    """Run one configuration under torchrun; its JSON, or the error it ended with."""
    import torch

    out = out_dir / f"ddp-{method}-{ranks}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if ranks > max(1, torch.cuda.device_count()):
        env["LADDER_DIST_BACKEND"] = "gloo"  # ranks share a GPU: NCCL refuses two ranks on one device
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
        str(Path(__file__).resolve()), "--worker", "--folder", str(folder), "--method", method,
        "--rows", str(rows), "--out", str(out),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0 or not out.is_file():
        return {"error": f"exit {done.returncode}", "log": done.stderr[-3000:]}
    return dict(json.loads(out.read_text(encoding="utf-8")))


def part_ddp(folder: Path, out_dir: Path, ranks: list[int], methods: list[str], rows: int) -> dict[str, Any]:
    """Every (method, ranks) configuration, each in its own launch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return {f"{m}/{n}_ranks": launch(folder, out_dir, n, m, rows, timeout=240) for m in methods for n in ranks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="(internal) run as one rank of a launch")
    parser.add_argument("--folder", type=Path, required=True, help="a model folder (gpu_check.py makes one)")
    parser.add_argument("--out", type=Path, required=True, help="worker: its JSON; else: a folder for the JSONs")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--methods", default="lora,qlora")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--rows", type=int, default=512)
    args = parser.parse_args()
    if args.worker:
        worker(args.folder, args.method, args.rows, args.out)
        return
    runs = part_ddp(args.folder, args.out, [int(n) for n in args.ranks.split(",")], args.methods.split(","), args.rows)
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
