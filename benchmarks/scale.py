"""Scale-out on this machine: one process against torchrun (1 and 2 ranks) and Ray (2 workers).

Evaluation examples/s (zero_shot over the test split) and training tokens/s (a fixed LoRA, one
epoch) of the shipped support-tickets example, each configuration an `advisor assess` subprocess on
a fresh store (nothing cached), forgetting probes and the latency sample off so a rung's seconds are
its batched work. Wall time is the whole command (process start, model load, Ray start included):
the figure a user waits for. Ray's per-task overhead is timed apart: a task that only starts a
worker and imports what a piece imports.

The search part times a LoRA search of 4 trials (a grid of 4 learning rates, one epoch each, no
pruning: every configuration trains the same 4 trials) on the first SEARCH_ROWS train tickets, in one
process and with its trials as Ray tasks on 1 worker (2 CPUs) and on 2 workers (1 CPU each). Its wall
time is the search's own, from the study's journal: the first trial asked to the last one told.

The sharding part (benchmarks/scale_sharding.py) trains a 29M random llama under 2 gloo ranks, DDP
against FSDP, and reports what each rank holds (weights, gradients, AdamW state) and its peak RSS.

    python benchmarks/scale.py [--limit N] [--part executors|search|sharding|all]

Run alone: every configuration shares the same 2 cores. Writes benchmarks/results/scale.json (a part
run alone replaces only its own figures there).
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

from benchmarks.common import RESULTS, ROOT, write_result
from benchmarks.scale_sharding import print_rows, sharding_rows

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


SEARCH_ROWS = 24
SEARCH_RUNG = (
    "  - {rung: lora, r: 8, epochs: 1, extra_epochs: 0, evaluations_per_epoch: 1, search: {trials: 4, "
    "pruner: none, relative_budget: 4, space: {learning_rate: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]}}}\n"
)
SEARCH_CONFIGS: dict[str, list[str]] = {
    "one process": [],
    "ray 1 worker (2 CPUs)": ["--executor", "ray", "--cpus-per-task", "2"],
    "ray 2 workers (1 CPU each)": ["--executor", "ray", "--cpus-per-task", "1"],
}


def search_task(folder: Path) -> Path:
    """The example with one searched LoRA rung on its first SEARCH_ROWS train tickets (a quarter for validation)."""
    rows = (EXAMPLE / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:SEARCH_ROWS]
    (folder / "train.jsonl").write_text("".join(rows), encoding="utf-8")
    shutil.copy2(EXAMPLE / "test.jsonl", folder / "test.jsonl")
    text = (
        (EXAMPLE / "task.yaml")
        .read_text(encoding="utf-8")
        .replace("  test: test.jsonl\n", "  test: test.jsonl\n  validation_size: 0.25\n")
    )
    head = text[: text.index("rungs:")]
    body = f"rungs:\n{SEARCH_RUNG}seed: 0\nforgetting: {{enabled: false}}\nevaluation: {{latency_sample: 0}}\n"
    path = folder / "task.yaml"
    path.write_text(head + body, encoding="utf-8")
    return path


def run_search(name: str, task: Path, limit: int) -> dict[str, Any]:
    """One configuration of the search: the command's wall time and the search's own (from its journal)."""
    slug = name.split(" (")[0].replace(" ", "-")
    store, out = task.parent / slug / "store.sqlite", task.parent / f"{slug}.json"
    command = [sys.executable, *ADVISOR, str(task), "--store", str(store), "-o", str(out), "--limit", str(limit)]
    started = time.perf_counter()
    done = subprocess.run([*command, *SEARCH_CONFIGS[name]], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"search: {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    search = json.loads(out.read_text(encoding="utf-8"))["rungs"][0]["training"]["search"]
    return {
        "wall_s": round(wall, 1),
        "search_wall_s": round(_search_wall(store.parent), 1),
        "trials_s": round(sum(t["seconds"] for t in search["trials"]), 1),  # the trials' own seconds, added up
        "chosen": search["chosen"],
        "chosen_params": search["chosen_params"],
    }


def _search_wall(cache: Path) -> float:
    """Seconds from the first trial's start to the last trial's end, as the study's journal recorded them."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    journal = next((cache / "searches").glob("*/journal.log"))
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="search", storage=storage).get_trials(deepcopy=False)
    first = min(t.datetime_start for t in trials if t.datetime_start is not None)
    last = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return (last - first).total_seconds()


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
    parser.add_argument(
        "--part", choices=["executors", "search", "sharding", "all"], default="all", help="what to measure"
    )
    args = parser.parse_args()
    previous = RESULTS / "scale.json"
    results: dict[str, Any] = json.loads(previous.read_text(encoding="utf-8")) if previous.is_file() else {}
    results["machine"] = f"{os.cpu_count()} cores"
    with tempfile.TemporaryDirectory(prefix="ladder-scale-") as scratch:
        if args.part in ("executors", "all"):
            results["configs"] = {}
            for kind in RUNGS:
                folder = Path(scratch) / kind
                folder.mkdir()
                task = task_copy(folder, kind)
                results["configs"][kind] = {}
                for name in CONFIGS:
                    results["configs"][kind][name] = run_config(name, task, args.limit)
                    print(f"{kind}: {name}: {results['configs'][kind][name]}", flush=True)
            results["ray_overhead"] = ray_task_overhead()
        if args.part in ("search", "all"):
            folder = Path(scratch) / "search"
            folder.mkdir()
            task = search_task(folder)
            results["search"] = {"train_rows": SEARCH_ROWS, "trials": 4, "configs": {}}
            for name in SEARCH_CONFIGS:
                results["search"]["configs"][name] = run_search(name, task, args.limit or 4)
                print(f"search: {name}: {results['search']['configs'][name]}", flush=True)
        if args.part in ("sharding", "all"):
            results["sharding"] = sharding_rows()
    path = write_result("scale", results)
    for kind, configs in results.get("configs", {}).items():
        print(kind)
        for name, row in configs.items():
            figures = ", ".join(f"{k} {v}" for k, v in row.items())
            print(f"  {name:18} {figures}")
    if "ray_overhead" in results:
        print("ray overhead:", ", ".join(f"{k} {v}" for k, v in results["ray_overhead"].items()))
    if "search" in results:
        print(f"search of 4 trials on {SEARCH_ROWS} train tickets")
        for name, row in results["search"]["configs"].items():
            print(f"  {name:28} search {row['search_wall_s']} s, command {row['wall_s']} s, chosen {row['chosen']}")
    if "sharding" in results:
        print_rows(results["sharding"])
    print(f"written to {path}")


if __name__ == "__main__":
    main()
