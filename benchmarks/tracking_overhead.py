"""What `--track` adds to a warm `advisor assess`: the same warm run, untracked against tracked.

A warm run answers every rung from the result store; tracking then writes one MLflow parent run, a
nested run per rung and per trial (the embedded SQLite store), and TensorBoard event files. The issue
asks for at most 5 s more than the untracked warm run. The first tracked run of a task also creates
the embedded store (schema migrations); it is timed apart. The store is copied to a temporary folder
first, so the task's own .advisor folder is left as it was.

    python benchmarks/tracking_overhead.py [--task examples/preferences_and_distill/task.yaml]
        [--store examples/preferences_and_distill/.advisor/store.sqlite] [--repeats 3]

Runs alone (each assess is a subprocess on the 2 cores). Writes benchmarks/results/tracking_overhead.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, write_result

ADVISOR = [sys.executable, "-c", "from advisor.cli.main import main; main()"]


def timed_assess(task: Path, store: Path, out: Path, *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*ADVISOR, "assess", str(task), "--store", str(store), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"advisor assess failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, default=ROOT / "examples" / "preferences_and_distill" / "task.yaml")
    parser.add_argument("--store", type=Path, default=None, help="a warm store (default: the task's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = args.store or args.task.parent / ".advisor" / "store.sqlite"
    if not source.is_file():
        raise SystemExit(f"{source}: no warm store; run `advisor assess {args.task}` first")
    with tempfile.TemporaryDirectory(prefix="ladder-track-") as scratch:
        folder = Path(scratch) / "advisor"
        shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns("mlflow*", "tensorboard"))
        store, out = folder / "store.sqlite", folder / "run.json"
        timed_assess(args.task, store, out)  # warm-up: page cache, and anything not yet stored
        # the first tracked run also creates the embedded store (its schema migrations): once per task
        first_tracked = timed_assess(args.task, store, out, "--track", "mlflow,tensorboard")[0]
        plain, tracked = [], []
        tracked_stdout = ""
        for _ in range(args.repeats):
            plain.append(timed_assess(args.task, store, out)[0])
            seconds, tracked_stdout = timed_assess(args.task, store, out, "--track", "mlflow,tensorboard")
            tracked.append(seconds)
        events = sum(1 for _ in (folder / "tensorboard").rglob("events.out.tfevents.*"))
        database_mb = (folder / "mlflow.db").stat().st_size / 1e6
    added = statistics.median(tracked) - statistics.median(plain)
    result = {
        "task": str(args.task.relative_to(ROOT) if args.task.is_relative_to(ROOT) else args.task),
        "repeats": args.repeats,
        "untracked_warm_s": plain,
        "tracked_warm_s": tracked,
        "added_s_median": added,
        "first_tracked_s": first_tracked,  # includes creating .advisor/mlflow.db
        "target_added_s": 5.0,
        "tensorboard_event_files": events,
        "mlflow_db_mb": database_mb,
        "tracking_lines": [line for line in tracked_stdout.splitlines() if line.startswith(("MLflow", "TensorBoard"))],
    }
    path = write_result("tracking_overhead", result)
    print(
        f"warm assess: untracked {statistics.median(plain):.1f} s, tracked (mlflow + tensorboard) "
        f"{statistics.median(tracked):.1f} s: +{added:.1f} s (target <= 5 s); {events} event files, "
        f"mlflow.db {database_mb:.1f} MB; the first tracked run, which creates the store: {first_tracked:.1f} s "
        f"-> {path}"
    )


if __name__ == "__main__":
    main()
