"""GPU acceptance (issue 34): training tokens/s and MFU of our loop against a hand sweep, HF Trainer + peft and trl.

Random-weight Llama models are built locally from LlamaConfig shapes (no hub): SmolLM2-135M's shape, Llama-3.2-1B's
and Llama-3.1-8B's. Rows are synthetic (prompt bodies of 16-192 random tokens, a 2-token answer); every method trains
on the same rows with the same LoRA (r 16, alpha 32, no dropout, all-linear), bf16 on CUDA, batches of at most 8 rows.

Measured, each group of measurements in its own subprocess (an OOM, a crash or a missing library becomes a row with
the error), the whole run under a global deadline (--deadline, 540 s by default):
- ours-lora / ours-qlora: tuning.loop.train at LoopSettings() defaults (checkpoints included), stopped after
  --seconds of timed steps (the first --warm steps are not timed); QLoRA's base is tuning.methods.quantized_base;
- ours-lora-mbt-N: the same with micro_batch_tokens=N, a hand sweep; "hand best": the fastest of them and defaults;
- hf-trainer-lora: transformers Trainer over peft, rows padded to the batch's longest, completion-only labels;
- sft-trainer-lora (+ sft-trainer-liger when liger_kernel imports): trl SFTTrainer over pre-tokenized rows with a
  completion_mask and completion_only_loss, no packing; an unsloth row only records whether it imports;
- search: tuning.search.run_search with SearchOptions() (4 trials) against the same search with trials=1, each
  trial a tuning.loop.train run at the Trainer's defaults on 1,024 rows (135M shape only); search-4-trials-together
  asks the 4 trials at once and trains them in one pass over the base (tuning/trial_batch.py).
- "defaults" means the Trainer's: micro_batch_tokens "auto" (measured on CUDA by tuning/micro_batch.py, timed
  as micro_batch_finder_seconds), packing "auto" (on, on CUDA).

Tokens are useful tokens (the rows' real, non-pad tokens); tokens/s become MFU as benchmarks/gpu_shapes.py says.
The modules: gpu_shapes (shapes, parameter counts, FLOPs/MFU), gpu_ours (our loop and search, the group's Context),
gpu_peers (Trainer + peft, trl), gpu_acceptance (the checks and the summary table); this one runs the plan.

    python benchmarks/gpu_throughput.py [--shapes 135m,1b,8b] [--deadline 540] [--seconds 10] [--out PATH] [--smoke]

--smoke runs a tiny shape on the CPU for a few steps (a wiring check, under a minute). The JSON goes to --out,
else $OUT/gpu_throughput.json, else benchmarks/results/gpu_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_acceptance import MICRO_BATCH_SWEEP, acceptance, summary  # noqa: E402
from benchmarks.gpu_ours import Context, free, ours, search  # noqa: E402
from benchmarks.gpu_peers import peer  # noqa: E402
from benchmarks.gpu_shapes import LORA, flops_note, peak_tflops, with_mfu  # noqa: E402

# (shape, group, measurements), in priority order: what the acceptance checks need comes first
PLAN: list[tuple[str, str, list[str]]] = [
    ("135m", "ours", ["ours-lora", *[f"ours-lora-mbt-{n}" for n in MICRO_BATCH_SWEEP]]),
    ("135m", "search", ["search-1-trial", "search-4-trials-together", "search-4-trials"]),
    ("1b", "core", ["ours-lora", "hf-trainer-lora"]),
    ("8b", "core", ["ours-lora", "hf-trainer-lora"]),
    ("135m", "peers", ["hf-trainer-lora", "sft-trainer-lora", "sft-trainer-liger", "unsloth", "ours-qlora"]),
    ("1b", "extra", ["sft-trainer-lora", "ours-qlora"]),
    ("8b", "extra", ["sft-trainer-lora", "ours-qlora"]),
]
SMOKE_PLAN: list[tuple[str, str, list[str]]] = [  # one process: imports are most of a CPU smoke run's time
    ("tiny", "all", ["ours-lora", "ours-lora-mbt-1024", "ours-qlora", "search-1-trial", "search-4-trials-together",
                     "search-4-trials", "hf-trainer-lora", "sft-trainer-lora", "sft-trainer-liger", "unsloth"]),
]  # fmt: skip


# ---- one group (in its subprocess) ---------------------------------------------------------------


def measure(ctx: Context, name: str) -> dict[str, Any]:
    if name == "ours-lora":
        return ours(ctx, "lora", None)
    if name == "ours-qlora":
        return ours(ctx, "qlora", None)
    if name.startswith("ours-lora-mbt-"):
        return ours(ctx, "lora", int(name.rsplit("-", 1)[1]))
    if name.startswith("search-"):
        return search(ctx, 1 if name == "search-1-trial" else 4, together=name.endswith("-together"))
    if name == "unsloth":
        import unsloth  # noqa: F401

        return {"skipped": "unsloth imports, but this script does not drive it (it needs its own loader)"}
    return peer(ctx, name)


def run_group(args: argparse.Namespace) -> None:
    """Run one group's measurements in this process; each row is appended to --rows-file as it finishes."""
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if device == "cpu":
        torch.set_num_threads(2)
    ctx = Context(args.shape, device, args.smoke, args.seconds, args.warm, args.until)
    for name in args.measurements.split(","):
        row: dict[str, Any] = {"shape": args.shape, "group": args.group, "method": name, "device": device}
        if ctx.left() < 8:
            row["skipped"] = "global deadline"
        else:
            started = time.perf_counter()
            try:
                row.update(measure(ctx, name))
            except (ImportError, ModuleNotFoundError) as error:
                row["skipped"] = f"{type(error).__name__}: {error}"
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {error}"
                row["traceback"] = traceback.format_exc()[-3000:]
            row["wall_seconds_incl_setup"] = round(time.perf_counter() - started, 2)
            free(device)
        with_mfu(row, args.shape, ctx.device_name)
        with open(args.rows_file, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "traceback"}), flush=True)


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    info: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__}
    for package in ("transformers", "peft", "trl", "bitsandbytes", "liger-kernel", "unsloth", "optuna"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info["peak_bf16_tflops"] = peak_tflops(info["gpu"])
    return info


def run_plan(args: argparse.Namespace, out_path: Path) -> list[dict[str, Any]]:
    plan = SMOKE_PLAN if args.smoke else [p for p in PLAN if p[0] in args.shapes.split(",")]
    deadline = time.time() + args.deadline
    rows: list[dict[str, Any]] = []
    rows_file = out_path.with_suffix(".rows.jsonl")
    rows_file.unlink(missing_ok=True)
    for shape, group, names in plan:
        left = deadline - time.time()
        if left < 20:
            rows += [{"shape": shape, "group": group, "method": n, "skipped": "global deadline"} for n in names]
            continue
        seconds = args.seconds * (1.5 if shape in ("1b", "8b") else 1.0)
        command = [sys.executable, __file__, "--group", group, "--shape", shape, "--measurements", ",".join(names),
                   "--rows-file", str(rows_file), "--seconds", str(seconds), "--warm", str(args.warm),
                   "--until", str(deadline - 5)] + (["--smoke"] if args.smoke else [])  # fmt: skip
        print(f"== {shape} {group}: {', '.join(names)} ({left:.0f} s left)", flush=True)
        before = len(_read_rows(rows_file))
        try:
            done = subprocess.run(command, timeout=max(10.0, left - 3), capture_output=True, text=True)
            failure = None if done.returncode == 0 else f"exit status {done.returncode}: {done.stderr[-1500:]}"
        except subprocess.TimeoutExpired as expired:
            tail = (
                expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else expired.stderr or ""
            )
            failure = f"timed out (global deadline): {tail[-500:]}"
        got = _read_rows(rows_file)[before:]
        rows += got
        for name in names[len(got) :]:  # the measurement that crashed its process, and those after it
            rows.append({"shape": shape, "group": group, "method": name, "error": failure or "no row written"})
    rows_file.unlink(missing_ok=True)
    return rows


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="135m,1b,8b", help="comma-separated among 135m,1b,8b")
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds the whole run may take")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per measurement (x1.5 for 1b/8b)")
    parser.add_argument("--warm", type=int, default=3, help="untimed warm-up steps per measurement")
    parser.add_argument("--out", help="JSON path (default $OUT/gpu_throughput.json or benchmarks/results/)")
    parser.add_argument("--smoke", action="store_true", help="tiny shape on the CPU, a few steps: a wiring check")
    # internal: one group in a subprocess
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--measurements", help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    parser.add_argument("--until", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.group:
        run_group(args)
        return
    if args.smoke:
        args.warm, args.seconds, args.deadline = 2, 1.0, min(args.deadline, 57.0)
    if args.out:
        out_path = Path(args.out)
    elif os.environ.get("OUT"):
        out_path = Path(os.environ["OUT"]) / "gpu_throughput.json"
    else:
        out_path = (
            ROOT / "benchmarks" / "results" / ("gpu_throughput_smoke.json" if args.smoke else "gpu_throughput.json")
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    env = environment()
    rows = run_plan(args, out_path)
    checks = acceptance(rows, args.smoke)
    result = {
        "benchmark": "gpu_throughput",
        "smoke": args.smoke,
        "environment": env,
        "settings": {"deadline_s": args.deadline, "seconds": args.seconds, "warm_steps": args.warm, "lora": LORA},
        "flops_note": flops_note(),
        "rows": rows,
        "acceptance": checks,
        "wall_seconds": round(time.time() - started, 1),
    }
    out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(summary(rows, checks, args.smoke))
    print(f"wrote {out_path} in {result['wall_seconds']} s")


if __name__ == "__main__":
    main()
