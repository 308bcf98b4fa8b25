"""Remote rungs against a real local server that misbehaves: 429 with Retry-After, 5xx, answers past the
timeout, truncated and malformed JSON, wrong shapes; a run killed mid-way; a key that must not leak.

`advisor assess` runs as a subprocess against tests/servers/faulty_openai.py on a free port of 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tests.servers.faulty_openai import answer_for

pytestmark = pytest.mark.slow  # starts servers and runs `advisor assess` as subprocesses

ROOT = Path(__file__).resolve().parents[2]
ADVISOR = [sys.executable, "-c", "from advisor.cli.main import main; main()"]
KEY = "sk-test-4f9c2e7d1b-not-a-real-key"
KEY_ENV = "LADDER_TEST_REMOTE_KEY"
LABELS = ["billing", "technical", "access"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FaultyServer:
    """The fault-injecting server as a subprocess, with its attempt log."""

    def __init__(self, folder: Path, *args: str):
        self.port = free_port()
        self.log = folder / f"attempts-{self.port}.jsonl"
        self.log.touch()
        command = [sys.executable, "-m", "tests.servers.faulty_openai", "--port", str(self.port)]
        command += ["--log", str(self.log), "--key", KEY, *args]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def attempts(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[FaultyServer]]:
    started: list[FaultyServer] = []
    yield started
    for server in started:
        server.stop()


def remote_task(folder: Path, model_dir: Path, url: str, rows: int = 24, extra: str = "", endpoint: str = "") -> Path:
    topics = ["charged twice", "app crashes", "cannot log in"]
    data = [{"id": f"t{i}", "text": f"Ticket {i}: {topics[i % 3]}", "label": LABELS[i % 3]} for i in range(rows)]
    write_jsonl(folder / "train.jsonl", data[:6])
    write_jsonl(folder / "test.jsonl", data[6:])
    task = folder / "task.yaml"
    task.write_text(
        "name: remote-faults\n"
        f"model: {model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        f"labels: {LABELS}\n"
        "endpoints:\n"
        f"  hosted: {{base_url: '{url}', model: stand-in, api_key_env: {KEY_ENV}, price: {{input_per_million: 2, "
        f"output_per_million: 8}}, max_concurrency: 3, timeout_s: 1.5, max_retries: 4{endpoint}}}\n"
        "rungs:\n  - {rung: zero_shot, name: hosted_zero_shot, endpoint: hosted}\n"
        "evaluation: {latency_sample: 4, bootstrap_resamples: 200}\n" + extra,
        encoding="utf-8",
    )
    return task


def assess(task: Path, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env.update(PYTHONPATH=str(ROOT), **({KEY_ENV: key} if key else {}))
    out = task.parent / "run.json"
    command = [*ADVISOR, "assess", str(task), "-o", str(out), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def expected_answers(task: Path) -> dict[str, str]:
    """What the server answers each test row (the zero_shot prompt's user text is the row's text)."""
    system = "Route the ticket.\nAnswer with exactly one of: billing, technical, access."
    rows = [json.loads(line) for line in (task.parent / "test.jsonl").read_text().splitlines()]
    return {
        r["id"]: answer_for([{"role": "system", "content": system}, {"role": "user", "content": r["text"]}])
        for r in rows
    }


def test_every_fault_is_survived_and_each_answer_counted_once(
    tmp_path: Path, tiny_model_dir: Path, servers: list[FaultyServer]
) -> None:
    server = FaultyServer(tmp_path, "--faults", "429,500,503,slow,truncated,malformed,shape,none", "--slow-s", "3")
    servers.append(server)
    task = remote_task(tmp_path, tiny_model_dir, server.url)
    done = assess(task)
    assert done.returncode == 0, done.stderr
    rung = json.loads((tmp_path / "run.json").read_text())["rungs"][0]
    assert rung["scoring"] == "generate" and rung["endpoint"]["scoring"] == "generate"  # the probe's 400 said so
    assert {r["id"]: r["output"] for r in rung["records"]} == expected_answers(task)  # nothing lost or crossed
    attempts = server.attempts()
    # each row answered once and none twice (a "slow" answer comes after the client gave up and retried)
    good = Counter(a["body"] for a in attempts if a.get("answered") and a["fault"] != "slow")
    assert len(good) == 18 and set(good.values()) == {1}
    faults = Counter(a["fault"] for a in attempts if "fault" in a and a["fault"] != "none")
    assert set(faults) == {"429", "500", "503", "slow", "truncated", "malformed", "shape"}
    assert all(a["keyed"] for a in attempts)  # the key from the environment was sent
    # Retry-After: 1 was honoured: the retry of a body refused with 429 came at least a second later
    for refused in (a for a in attempts if a.get("fault") == "429"):
        retry = min(a["time"] for a in attempts if a["body"] == refused["body"] and a["time"] > refused["time"])
        assert retry - refused["time"] >= 0.95
    # usage from the responses (the server counts len(body) // 4), priced at the endpoint's price
    assert rung["tokens"]["completion_mean"] == 2
    assert rung["cost"]["hosting"] == "endpoint" and rung["cost"]["per_1k"] > 0
    assert rung["latency"]["sample_size"] == 4 and rung["endpoint"]["requests_sent"] == 18

    again = assess(task)  # a re-run sends nothing
    assert again.returncode == 0, again.stderr
    assert len(server.attempts()) == len(attempts)

    # the key went to the server and nowhere else: not the store, the Assessment, the reports or the output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".jsonl"]
    assert {".sqlite", ".json", ".html", ".md"} <= {p.suffix for p in written}
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in done.stdout + done.stderr + again.stdout + again.stderr
    with sqlite3.connect(tmp_path / ".advisor" / "store.sqlite") as db:
        assert db.execute("SELECT count(*) FROM responses").fetchone()[0] == 19  # 18 answers and the probe


def test_a_run_killed_mid_way_sends_only_the_missing_requests(
    tmp_path: Path, tiny_model_dir: Path, servers: list[FaultyServer]
) -> None:
    server = FaultyServer(tmp_path, "--delay-s", "0.3")
    servers.append(server)
    task = remote_task(tmp_path, tiny_model_dir, server.url, rows=30)
    env = {**os.environ, "PYTHONPATH": str(ROOT), KEY_ENV: KEY}
    command = [*ADVISOR, "assess", str(task), "-o", str(tmp_path / "run.json")]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while sum(1 for a in server.attempts() if a.get("answered")) < 8:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = server.attempts()
    answered_first = {a["body"] for a in before if a.get("answered")}
    assert len(answered_first) < 24
    done = assess(task)
    assert done.returncode == 0, done.stderr
    after = server.attempts()[len(before) :]
    resent = {a["body"] for a in after} & answered_first
    assert len(resent) <= 3  # at most the requests in flight when it was killed (max_concurrency)
    assert len({a["body"] for a in after}) == 24 - len(answered_first) + len(resent)
    rung = json.loads((tmp_path / "run.json").read_text())["rungs"][0]
    assert {r["id"]: r["output"] for r in rung["records"]} == expected_answers(task)


def test_an_endpoint_that_keeps_failing_is_one_clear_error_and_the_key_never_leaks(
    tmp_path: Path, tiny_model_dir: Path, servers: list[FaultyServer]
) -> None:
    server = FaultyServer(tmp_path, "--always", "503")
    servers.append(server)
    task = remote_task(tmp_path, tiny_model_dir, server.url, rows=9, endpoint=", max_retries: 1")
    done = assess(task)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "endpoints.hosted" in lines[0] and "HTTP 503 after 1 retries" in lines[0]
    assert KEY not in done.stderr + done.stdout

    malformed = FaultyServer(tmp_path, "--always", "malformed")
    servers.append(malformed)
    task = remote_task(tmp_path, tiny_model_dir, malformed.url, rows=9)
    done = assess(task)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(lines) == 1 and "malformed JSON" in lines[0], done.stderr


def test_a_missing_key_or_an_outside_host_stops_before_any_request(
    tmp_path: Path, tiny_model_dir: Path, servers: list[FaultyServer]
) -> None:
    server = FaultyServer(tmp_path)
    servers.append(server)
    task = remote_task(tmp_path, tiny_model_dir, server.url, rows=9)
    done = assess(task, key=None)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert KEY_ENV in done.stderr and "not set" in done.stderr
    assert server.attempts() == []

    outside = remote_task(
        tmp_path,
        tiny_model_dir,
        "https://api.ladder.invalid/v1",
        rows=9,
        extra="facts: {data_must_stay_in_house: true}\n",
    )
    done = assess(outside)
    assert done.returncode == 2 and "data_must_stay_in_house" in done.stderr and "api.ladder.invalid" in done.stderr


def test_health_of_the_fault_server_itself(tmp_path: Path, servers: list[FaultyServer]) -> None:
    """The server answers a well-formed chat request (so a failing test above is not the server's fault)."""
    server = FaultyServer(tmp_path)
    servers.append(server)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(server.url + "/chat/completions", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["choices"][0]["message"]["content"] in ("yes", "no")
