"""What the remote path adds per request: the same rung, local against through `advisor serve` on 127.0.0.1.

The embedded model answers the support-tickets example's test tickets two ways, one request at a time:
- local: the rung's prompts answered in this process by the engine (what `advisor assess` does);
- remote: the same prompts sent to `advisor serve` (a subprocess on a free port, the same model and
  precision) through the rung's RemoteAnswerer: the openai SDK, JSON both ways, the server's queue.
Scoring (exact label likelihoods: locally one forward pass shares the prompt across labels; remotely
/completions echo sends one prompt per label) and generation (chat, greedy, 8 tokens) are timed
separately. Then the remote path at concurrency 4 over the same requests, against the local batch.

    python benchmarks/remote_overhead.py [--examples 32]

Reports per-request p50/p95 latency of each, the overhead (remote - local p50), and whether the
answers agree. Runs alone: the server and this process share the 2 cores, one at a time.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
from benchmarks.common import ROOT, write_result
from harness.data.store import Store
from harness.inference.answerer import LocalAnswerer, PromptParts
from harness.inference.answering import Mode
from harness.remote.answerer import RemoteAnswerer
from harness.remote.client import EndpointClient
from harness.remote.endpoint import Endpoint, Scoring, Tokenizer
from harness.rungs import RungContext

CASES: list[tuple[Mode, Scoring, Tokenizer]] = [("score", "echo", "task"), ("generate", "generate", "own")]

ADVISOR = [sys.executable, "-c", "from advisor.cli.main import main; main()"]
KEY_ENV = "LADDER_BENCH_KEY"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    task = ROOT / "examples" / "migration" / "stand_in.yaml"
    command = [*ADVISOR, "serve", str(task), "--port", str(port), "--api-key-env", KEY_ENV]
    with log.open("w") as sink:
        process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=sink)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited: {log.read_text()}") from None
            time.sleep(0.5)
    raise SystemExit("the server did not start")


def one_at_a_time(answer: Callable[[Sequence[Any]], list[Any]], parts: Sequence[Any]) -> tuple[list[float], list[Any]]:
    """Per-request wall time, after one warm-up request."""
    answer(parts[:1])
    seconds, outputs = [], []
    for part in parts:
        started = time.perf_counter()
        outputs += answer([part])
        seconds.append(time.perf_counter() - started)
    return seconds, outputs


def summary(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def measure(
    base_url: str,
    mode: Mode,
    scoring: Scoring,
    tokenizer: Tokenizer,
    parts: Sequence[PromptParts],
    local: LocalAnswerer,
    context: RungContext,
    folder: Path,
) -> dict[str, Any]:
    """One mode: local and remote one request at a time, then the local batch against remote at concurrency 4."""
    labels = context.labels

    def remote_answerer(concurrency: int, store: Store) -> RemoteAnswerer:
        endpoint = Endpoint(
            "bench", base_url, "base", api_key_env=KEY_ENV, tokenizer=tokenizer, max_concurrency=concurrency
        )
        return RemoteAnswerer(endpoint, lambda: EndpointClient(endpoint), context.prompts, store, labels, scoring)

    with Store(folder / f"{mode}.sqlite") as store:  # fresh: every request is sent
        remote = remote_answerer(1, store)
        local_s, local_out = one_at_a_time(lambda batch: local.answer(batch, labels, mode, 8), parts)
        remote_s, remote_out = one_at_a_time(lambda batch: remote.answer(batch, labels, mode, 8), parts)
    started = time.perf_counter()
    local.answer(parts, labels, mode, 8)
    local_batch = time.perf_counter() - started
    with Store(folder / f"{mode}-batch.sqlite") as store:
        started = time.perf_counter()
        remote_answerer(4, store).answer(parts, labels, mode, 8)
        remote_batch = time.perf_counter() - started
    agree = sum(a.text == b.text for a, b in zip(local_out, remote_out, strict=True))
    return {
        "local": summary(local_s),
        "remote": summary(remote_s),
        "overhead_p50_ms": 1000 * (statistics.median(remote_s) - statistics.median(local_s)),
        "answers_agree": f"{agree}/{len(parts)}",
        "local_batch_examples_per_s": len(parts) / local_batch,
        "remote_concurrency4_examples_per_s": len(parts) / remote_batch,
        "remote_scoring": scoring,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=32)
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"

    run = prepare_run(ROOT / "examples" / "support_tickets" / "task.yaml", AssessOptions(), QuietHooks())
    context = run.context
    labels = context.labels
    parts = [PromptParts(example) for example in run.test[: args.examples]]
    local = LocalAnswerer(context.engine, context.prompts, context.model_fingerprint)
    results: dict[str, Any] = {"examples": len(parts), "labels": len(labels), "model": run.source.name}
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        server = start_server(port, Path(folder) / "server.log")
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            for mode, scoring, tokenizer in CASES:
                results[mode] = measure(base_url, mode, scoring, tokenizer, parts, local, context, Path(folder))
        finally:
            server.terminate()
            server.wait(timeout=60)
    path = write_result("remote_overhead", results)
    for mode in ("score", "generate"):
        r = results[mode]
        print(
            f"{mode:8s} local p50 {r['local']['p50_ms']:.0f} ms, remote ({r['remote_scoring']}) p50 "
            f"{r['remote']['p50_ms']:.0f} ms: overhead {r['overhead_p50_ms']:+.0f} ms per request; answers agree "
            f"{r['answers_agree']}; batched {r['local_batch_examples_per_s']:.1f} ex/s local, "
            f"{r['remote_concurrency4_examples_per_s']:.1f} ex/s remote at concurrency 4"
        )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
