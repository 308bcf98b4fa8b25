"""GPU check: LoRA and QLoRA training throughput, and batched scoring throughput (bf16 vs fp32), on one GPU.

The model is SmolLM2-135M's architecture (config and tokenizer copied from the converted model folder)
with random weights made on the device: the real weights (500 MB) do not travel to a lent GPU machine.
Speeds and memory do not depend on the weights; losses do (they show that training moves, nothing more).

Parts, each independent (an error in one is recorded in the JSON and the others still run):
- lora: the project's own step (tuning.loop.accumulated_backward, then clipping, the loop's learning-rate
  schedule and AdamW, as tuning.loop.train does it) over a bf16 base loaded by harness.inference.models
  and wrapped by tuning.methods.wrap_lora; with the loop's default batch settings and with GPU-sized
  ones; then one short run of tuning.loop.train itself (checkpoints and a validation pass included).
- qlora: the same step over tuning.methods.quantized_base (nf4, double quantisation, bf16 compute).
- ddp: LoRA and QLoRA trained by tuning.loop.train under torchrun with 1 and 2 ranks (benchmarks/gpu_ddp.py;
  on one GPU the two ranks share it over gloo: the code path and per-rank memory, not the speed-up).
- eval: harness.inference.engine.Engine.score on classification-shaped requests with a shared prefix,
  bf16 and fp32, at the default batch budget (4096 tokens, 32 rows) and a large one.

If the project's code cannot be imported, training falls back to peft + torch driven the same way,
and the JSON says so ("code_path").

    python benchmarks/gpu_check.py [--out PATH] [--assets DIR] [--parts lora,qlora,eval,ddp] [--dry-run]

--dry-run builds a tiny model on the CPU and runs 2 steps of everything (an import and wiring check).
Useful training tokens count every real token a batch stands for, the shared prefix once per row;
scored tokens count prefix + context + choice tokens per request.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from benchmarks.gpu_scoring import part_eval  # noqa: E402
from benchmarks.gpu_setup import (  # noqa: E402
    DEFAULT_ASSETS,
    _error,
    _free,
    _pad_id,
    environment,
    label_tokens,
    load_tokenizer,
    prepare_model_folder,
    shared_prefix,
    training_rows,
)
from benchmarks.gpu_training import part_lora, part_qlora  # noqa: E402


def part_ddp_runs(ctx: dict[str, Any]) -> dict[str, Any]:
    """LoRA and QLoRA (QLoRA only on CUDA) under torchrun with 1 and 2 ranks (benchmarks/gpu_ddp.py)."""
    from benchmarks.gpu_ddp import part_ddp

    methods = ["lora", "qlora"] if ctx["device"] == "cuda" else ["lora"]
    rows = 32 if ctx["dry"] else 512
    return {"runs": part_ddp(ctx["folder"], ctx["folder"].parent / "ddp", [1, 2], methods, rows)}


def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    return ROOT / "benchmarks" / "results" / "gpu_check.json"


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(staging, path)


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"gpu_check on {result['environment'].get('gpu', result['environment']['device'])}"
        f" (torch {result['environment']['torch']}, transformers {result['environment']['transformers']})"
    ]
    for part, value in result["parts"].items():
        if "error" in value:
            lines.append(f"  {part}: ERROR {value['error']}")
            continue
        for name, run in value.get("runs", {}).items():
            if "error" in run:
                lines.append(f"  {part}/{name}: ERROR {run['error']}")
            elif "useful_tokens_per_s" in run:
                lines.append(
                    f"  {part}/{name}: {run['useful_tokens_per_s']} useful tok/s, {run['steps']} steps, "
                    f"loss {run['first_loss']} -> {run['final_loss']}, peak {run['peak_gpu_mem_mib']} MiB"
                    f"  [{run['code_path'][:40]}]"
                )
            else:
                lines.append(
                    f"  {part}/{name}: {run['scored_tokens_per_s']} scored tok/s, "
                    f"{run['requests_per_s']} req/s, peak {run['peak_gpu_mem_mib']} MiB"
                )
        loop = value.get("full_loop")
        if loop:
            lines.append(
                f"  {part}/full_loop: "
                + (
                    f"ERROR {loop['error']}"
                    if "error" in loop
                    else f"{loop['steps']} steps in {loop['seconds']} s, loss {loop['first_loss']} -> "
                    f"{loop['final_loss']}, val {loop['validation_losses']}, peak {loop['peak_gpu_mem_mib']} MiB"
                )
            )
    lines.append(f"  total {result.get('total_seconds')} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default $OUT/gpu_check.json, else benchmarks/results/gpu_check.json)",
    )
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="config.json + tokenizer files")
    parser.add_argument("--parts", default="lora,qlora,eval,ddp")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per training configuration")
    parser.add_argument("--rows", type=int, default=6000, help="synthetic training rows")
    parser.add_argument("--train-configs", default="loop_defaults,gpu_sized")
    parser.add_argument("--eval-dtypes", default="bfloat16,float32")
    parser.add_argument("--no-full-loop", action="store_true", help="skip the run of tuning.loop.train itself")
    parser.add_argument("--no-cudnn-sdp", action="store_true", help="turn off the cuDNN attention backend of SDPA")
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, 2 steps of everything")
    args = parser.parse_args()

    dry = args.dry_run
    device = "cuda" if torch.cuda.is_available() and not dry else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)  # a wiring check; leave the machine's cores to others
    if args.no_cudnn_sdp:
        torch.backends.cuda.enable_cudnn_sdp(False)
    out_path = args.out or default_out()
    begun = time.perf_counter()
    result: dict[str, Any] = {
        "script": "benchmarks/gpu_check.py",
        "dry_run": dry,
        "environment": environment(device),
        "parts": {},
    }
    checkpoint = lambda: write_json(out_path, {**result, "total_seconds": round(time.perf_counter() - begun, 1)})  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        folder, model_info = prepare_model_folder(args.assets, work, device, tiny=dry)
        result["model"] = model_info
        tokenizer = load_tokenizer(folder)
        from transformers import AutoConfig

        vocab = AutoConfig.from_pretrained(str(folder)).vocab_size
        labels = label_tokens(tokenizer)
        ctx = {
            "device": device,
            "dry": dry,
            "folder": folder,
            "tokenizer": tokenizer,
            "vocab": vocab,
            "labels": labels,
            "prefix": shared_prefix(tokenizer),
            "pad_id": _pad_id(tokenizer),
            "rows": training_rows(64 if dry else args.rows, vocab, labels, seed=0),
            "seconds": 1.0 if dry else args.seconds,
            "checkpoint": checkpoint,
            "train_configs": args.train_configs.split(","),
            "eval_dtypes": args.eval_dtypes.split(","),
            "full_loop": not args.no_full_loop,
        }
        result["data"] = {
            "prefix_tokens": len(ctx["prefix"]),
            "train_rows": len(ctx["rows"]),
            "row_tokens_mean": round(sum(len(r.tokens) for r in ctx["rows"]) / len(ctx["rows"]), 1),
            "labels": len(labels),
        }
    except Exception as error:
        result["parts"]["setup"] = _error(error)
        checkpoint()
        print(summary(result))
        sys.exit(1)
    parts = {"lora": part_lora, "qlora": part_qlora, "eval": part_eval, "ddp": part_ddp_runs}
    for name in [p.strip() for p in args.parts.split(",") if p.strip()]:
        started = time.perf_counter()
        try:
            result["parts"][name] = parts[name](ctx)
        except Exception as error:
            result["parts"][name] = _error(error)
        result["parts"][name]["part_seconds"] = round(time.perf_counter() - started, 1)
        _free(device)
        checkpoint()
        print(f"[{name}] done in {result['parts'][name]['part_seconds']} s", flush=True)
    result["total_seconds"] = round(time.perf_counter() - begun, 1)
    write_json(out_path, result)
    shutil.rmtree(work, ignore_errors=True)
    print(summary(result))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
