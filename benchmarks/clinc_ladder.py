"""The whole ladder on a 77-intent, 1,500-row slice of CLINC150: wall time, peak memory, and `--plan` against it.

The many-label task of the cost issue: zero_shot, few_shot_similar (k=8), rag (top_k=4) and lora with its
default search, forgetting probes on. First `advisor assess --plan` (timed apart), then the real run as a
subprocess, its process tree's memory sampled; the plan's total and per-rung estimates against the
measured wall time and each rung's measured seconds.

    python benchmarks/clinc_ladder.py [--intents 77] [--train-rows 1500] [--test-per-intent 3] [--plan-only]

`--plan-only` stops after the plan (a minute), for a first look at what the run would cost.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from benchmarks.example_run import ADVISOR, measured_run
from benchmarks.plan_accuracy import write_slice

RUNGS = """\
rungs:
  - zero_shot
  - {rung: few_shot, name: few_shot_similar, k: 8, selection: similar}
  - {rung: rag, top_k: 4}
  - {rung: lora, r: 16}
seed: 0
"""


def ladder_task(folder: Path, intents: int, train_rows: int, test_per_intent: int) -> Path:
    """The CLINC slice of benchmarks/plan_accuracy.py with the ladder's rungs and the probes on."""
    task = write_slice(folder, intents, train_rows, test_per_intent, 1)
    head = task.read_text(encoding="utf-8").split("rungs:")[0]
    task.write_text(head + RUNGS, encoding="utf-8")
    return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=77)
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--test-per-intent", type=int, default=3)
    parser.add_argument("--plan-only", action="store_true", help="only `advisor assess --plan`, not the run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        task = ladder_task(Path(folder), args.intents, args.train_rows, args.test_per_intent)
        started = time.perf_counter()
        subprocess.run([str(ADVISOR), "assess", str(task), "--plan"], check=True, capture_output=True)
        plan_seconds = time.perf_counter() - started
        plan = json.loads(next((Path(folder) / ".advisor" / "plans").glob("*.plan.json")).read_text())
        if args.plan_only:
            planned = {r["name"]: r["total_s"] for r in plan["rungs"]}
            for name, seconds in planned.items():
                print(f"  {name:18} {seconds:.0f} s planned")
            total = sum(planned.values())
            print(f"{args.intents} intents: --plan says {total / 60:.1f} min, calibrated in {plan_seconds:.0f} s")
            result = {"benchmark": "clinc_ladder_plan", "intents": args.intents, "plan_seconds": plan_seconds,
                      "planned_total_s": total, "rungs": plan["rungs"]}  # fmt: skip
            print(f"wrote {write_result('clinc_ladder_plan', result)}")
            return
        run = measured_run(task, dict(os.environ), Path(folder) / "run.json")
        assessment = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    planned_total = sum(r["total_s"] for r in plan["rungs"])
    rungs = {}
    for rung in assessment["rungs"]:
        metric = rung["metrics"][rung["primary_metric"]]
        estimate = next(r for r in plan["rungs"] if r["name"] == rung["name"])
        training = rung.get("training") or {}
        rungs[rung["name"]] = {
            "value": metric["value"],
            "ci": [metric["ci_low"], metric["ci_high"]],
            "seconds": rung["seconds"],
            "phases": rung.get("phases"),
            "planned_s": estimate["total_s"],
            "search": (training.get("search") or {}).get("chosen_params"),
        }
        print(
            f"  {rung['name']:18} {rung['primary_metric']} {metric['value']:.3f}; "
            f"{rung['seconds']:.0f} s measured, {estimate['total_s']:.0f} s planned"
        )
    result = {
        "benchmark": "clinc_ladder",
        "intents": args.intents,
        "train": assessment["task"]["n_train"],
        "validation": assessment["task"]["n_validation"],
        "test": assessment["task"]["n_test"],
        "plan_seconds": plan_seconds,
        "planned_total_s": planned_total,
        "measured_s": run["seconds"],
        "plan_error": planned_total / run["seconds"] - 1,
        "peak_tree_rss_mb": run["peak_tree_rss_mb"],
        "rungs": rungs,
        "recommendation": assessment["recommendation"]["summary"],
    }
    print(
        f"{args.intents} intents: the ladder took {run['seconds'] / 60:.1f} min (peak RSS "
        f"{run['peak_tree_rss_mb']:.0f} MB); --plan said {planned_total / 60:.1f} min ({result['plan_error']:+.0%}), "
        f"calibrated in {plan_seconds:.0f} s"
    )
    print(f"wrote {write_result('clinc_ladder', result)}")


if __name__ == "__main__":
    main()
