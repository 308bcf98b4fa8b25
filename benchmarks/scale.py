"""Scale-out on this machine: one process against torchrun (1 and 2 ranks) and Ray (2 workers).

Evaluation examples/s (zero_shot over the test split) and training tokens/s (a fixed LoRA, one
epoch) of the shipped support-tickets example, each configuration an `advisor assess` subprocess on
a fresh store (nothing cached), forgetting probes and the latency sample off so a rung's seconds are
its batched work. Wall time is the whole command (process start, model load, Ray start included):
the figure a user waits for. Ray's per-task overhead is timed apart: a task that only starts a
worker and imports what a piece imports.

    python benchmarks/scale.py [--limit N]

Run alone: every configuration shares the same 2 cores. Writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, write_result

EXAMPLE = ROOT / "examples" / "support_tickets"
RUNGS = {
    "evaluation": "  - zero_shot\n",
    "training": "  - {rung: lora, r: 16, learning_rate: 4e-4, epochs: 1, search: false}\n",
}
ADVISOR = ["-m", "advisor.cli.main", "assess"]
CONFIGS: dict[str, list[str]] = {
    "one process": [sys.executable],
    "torchrun 1 rank": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"],
    "torchrun 2 ranks": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
    "ray 2 workers": [sys.executable],
}


def task_copy(folder: Path, kind: str) -> Path:
    """The example with one rung, no probes and no latency sample."""
    for name in ("train.jsonl", "test.jsonl"):
        shutil.copy2(EXAMPLE / name, folder / name)
    text = (EXAMPLE / "task.yaml").read_text(encoding="utf-8")
    head = text[: text.index("rungs:")]
    body = f"rungs:\n{RUNGS[kind]}seed: 0\nforgetting: {{enabled: false}}\nevaluation: {{latency_sample: 0}}\n"
    path = folder / "task.yaml"
    path.write_text(head + body, encoding="utf-8")
    return path


def run_config(name: str, task: Path, limit: int | None) -> dict[str, Any]:
    out = task.parent / f"{name.replace(' ', '-')}.json"
    store = task.parent / name.replace(" ", "-") / "store.sqlite"
    extra = ["--limit", str(limit)] if limit else []
    if name.startswith("ray"):
        extra += ["--executor", "ray", "--shard-size", str(max(1, (limit or 124) // 2))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if "2 ranks" in name else dict(os.environ)
    started = time.perf_counter()
    done = subprocess.run(
        [*CONFIGS[name], *ADVISOR, str(task), "--store", str(store), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    assessment = json.loads(out.read_text(encoding="utf-8"))
    rung = assessment["rungs"][0]
    n = len(rung["records"])
    result: dict[str, Any] = {"wall_s": round(wall, 1), "examples": n, "examples_per_s_wall": round(n / wall, 2)}
    if not name.startswith("ray"):  # Ray's rung seconds are the driver's reading of the store, not the work
        evaluation_s = rung["seconds"] - (rung["training"]["chosen_seconds"] or 0 if rung["training"] else 0)
        result["evaluation_examples_per_s"] = round(n / evaluation_s, 2)
    training = rung["training"]
    if training:
        result["training_s"] = round(training["seconds"], 1)
        result["training_tokens_per_s"] = round(training["useful_tokens_per_s"], 1)
        result["training_tokens"] = training["useful_tokens"]
    result["accuracy"] = rung["metrics"]["accuracy"]["value"]
    return result


def ray_task_overhead() -> dict[str, float]:
    """Seconds from submitting a task to its result when the task only imports a piece's modules."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import logging

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    init_s = time.perf_counter() - started

    @ray.remote(num_cpus=1)
    def imports() -> float:
        begun = time.perf_counter()
        import transformers  # noqa: F401

        import advisor.fanout.piece  # noqa: F401
        import harness.inference.engine  # noqa: F401

        return time.perf_counter() - begun

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        imported = ray.get(imports.remote())
        timings.append((time.perf_counter() - started, imported))
    ray.shutdown()
    return {
        "ray_init_s": round(init_s, 2),
        "first_task_s": round(timings[0][0], 2),
        "first_task_imports_s": round(timings[0][1], 2),
        "warm_task_s": round(min(t for t, _ in timings[1:]), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N test examples")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "configs": {}}
    with tempfile.TemporaryDirectory(prefix="ladder-scale-") as scratch:
        for kind in RUNGS:
            folder = Path(scratch) / kind
            folder.mkdir()
            task = task_copy(folder, kind)
            results["configs"][kind] = {}
            for name in CONFIGS:
                results["configs"][kind][name] = run_config(name, task, args.limit)
                print(f"{kind}: {name}: {results['configs'][kind][name]}", flush=True)
    results["ray_overhead"] = ray_task_overhead()
    path = write_result("scale", results)
    for kind, configs in results["configs"].items():
        print(kind)
        for name, row in configs.items():
            figures = ", ".join(f"{k} {v}" for k, v in row.items())
            print(f"  {name:18} {figures}")
    print("ray overhead:", ", ".join(f"{k} {v}" for k, v in results["ray_overhead"].items()))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
