"""The shipped example end to end, cold then warm: wall time and peak memory of the whole process tree.

Copies examples/support_tickets to a temporary folder (so no store exists), runs `advisor assess` on
it as a subprocess, and samples the resident memory of that process and all its children every 0.2 s
with psutil (moving work into a subprocess does not hide it). Then runs it again: the warm run finds
every output, search and artifact stored; it should compute nothing and load no model or tokenizer,
so the benchmark also records what it computed, and where its import time goes (a third run under
PYTHONPROFILEIMPORTTIME). The cold run reuses the converted embedded model unless `--cold-model`
also starts from an empty model cache.

    python benchmarks/example_run.py [--cold-model] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
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

ADVISOR = Path(sys.executable).parent / "advisor"
# the heavy packages: a warm run should import none but numpy (and, for now, torch)
WATCHED_IMPORTS = ("torch", "transformers", "tokenizers", "datasets", "pandas", "pyarrow", "peft", "optuna",
                   "faiss", "sentence_transformers", "numpy")  # fmt: skip


def tree_rss(process: Any) -> int:
    """Resident bytes of a process and every descendant (those that vanish mid-read count as zero)."""
    import psutil

    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def measured_run(task: Path, env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run `advisor assess` and sample the process tree's memory until it exits."""
    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(
        [str(ADVISOR), "assess", str(task), "-o", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, tree_rss(watched))
        except psutil.Error:
            break
        time.sleep(0.2)
    output = child.stdout.read() if child.stdout else ""
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        print(output[-3000:])
        raise SystemExit(f"advisor assess failed with exit code {child.returncode}")
    return {"seconds": seconds, "peak_tree_rss_mb": peak / 2**20, "output_tail": output[-4000:], "output": output}


def import_seconds(task: Path, env: dict[str, str], out: Path) -> dict[str, float]:
    """A run's import time: in all, and each watched package's cumulative seconds where it was first imported."""
    done = subprocess.run(
        [str(ADVISOR), "assess", str(task), "-o", str(out)],
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    seconds: dict[str, float] = {"all": 0.0}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # a top-level import: its time holds every nested one
            seconds["all"] += int(cumulative) / 1e6
        if name.strip() in WATCHED_IMPORTS and name.strip() not in seconds:
            seconds[name.strip()] = int(cumulative) / 1e6
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-model", action="store_true", help="start from an empty model cache too")
    parser.add_argument("--keep", type=Path, help="copy the run's folder (store, searches, reports) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / "support_tickets"
        shutil.copytree(ROOT / "examples" / "support_tickets", work, ignore=shutil.ignore_patterns(".advisor"))
        env = dict(os.environ)
        if args.cold_model:
            env["LADDER_CACHE_DIR"] = str(Path(folder) / "model-cache")
        cold = measured_run(work / "task.yaml", env, work / "cold.json")
        print(f"cold: {cold['seconds']:.0f} s, peak tree RSS {cold['peak_tree_rss_mb']:.0f} MB", flush=True)
        warm = measured_run(work / "task.yaml", env, work / "warm.json")
        warm_rungs = json.loads((work / "warm.json").read_text(encoding="utf-8"))["rungs"]
        warm["computed"] = sum(rung["computed"] for rung in warm_rungs)
        warm["import_seconds"] = import_seconds(work / "task.yaml", env, work / "imports.json")
        print(f"warm: {warm['seconds']:.1f} s, peak tree RSS {warm['peak_tree_rss_mb']:.0f} MB", flush=True)
        imports = ", ".join(f"{name} {value:.1f} s" for name, value in warm["import_seconds"].items())
        print(f"  computed {warm['computed']} answers; imports: {imports}", flush=True)
        assessment = json.loads((work / "cold.json").read_text(encoding="utf-8"))
        from advisor.measure.plan_store import Plan

        plans = list((work / ".advisor" / "plans").glob("*.plan.json"))  # made by the cold run before it computed
        plan = Plan.model_validate_json(plans[0].read_text(encoding="utf-8")) if plans else None
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    rungs = {}
    for rung in assessment["rungs"]:
        metric = rung["metrics"][rung["primary_metric"]]
        training = rung.get("training") or {}
        search = training.get("search") or {}
        rungs[rung["name"]] = {
            "metric": rung["primary_metric"],
            "value": metric["value"],
            "ci": [metric["ci_low"], metric["ci_high"]],
            "seconds": rung.get("seconds"),
            "training_seconds": training.get("seconds"),
            "chosen_seconds": training.get("chosen_seconds"),
            "phases": rung.get("phases"),
            "chosen": search.get("chosen_params"),
            "trials": len(search.get("trials", [])),
            "pruned": sum(t["state"] == "pruned" for t in search.get("trials", [])),
            "warm_start": search.get("warm_start"),
            "best_epoch": training.get("best_epoch"),
            "epochs_run": training.get("epochs_run"),
            "forgetting": (rung.get("forgetting") or {}).get("delta"),
        }
        phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in (rung.get("phases") or {}).items())
        print(f"  {rung['name']:20} {metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]", end="")
        if search:
            ratio = training["seconds"] / training["chosen_seconds"]
            print(
                f"  search {training['seconds']:.0f} s = {ratio:.2f}x the chosen run; chose {search['chosen_params']}"
            )
        else:
            print()
        print(f"  {'':20} {phases}")
    recommendation = assessment.get("recommendation") or {}
    print(f"recommendation: {recommendation.get('summary')}")
    planned = None
    if plan is not None:
        planned = {
            "total_s": plan.total_s(),
            "calibration_s": plan.calibration_s,
            "error": plan.total_s() / cold["seconds"] - 1,
            "rungs": {r.name: r.total_s for r in plan.rungs},
        }
        print(f"plan: {planned['total_s']:.0f} s against {cold['seconds']:.0f} s measured ({planned['error']:+.0%})")
    log = write_result("example_run_cold_log", {"output": cold["output"]})
    result = {
        "benchmark": "example_run",
        "cold_model_cache": args.cold_model,
        "cold": {k: v for k, v in cold.items() if k not in ("output_tail", "output")},
        "warm": {k: v for k, v in warm.items() if k not in ("output_tail", "output")},
        "cold_log": str(log),
        "plan": planned,
        "rungs": rungs,
        "recommendation": recommendation,
        "environment": assessment.get("environment"),
    }
    print(f"wrote {write_result('example_run', result)}")


if __name__ == "__main__":
    main()
