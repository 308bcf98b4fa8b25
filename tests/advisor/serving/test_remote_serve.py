"""A remote rung against the project's own `advisor serve` (a subprocess on a free port of 127.0.0.1)
answers as the same rung answers locally: exact label likelihoods through /completions echo, the same
greedy text through chat, the same few-shot prompt, and a re-run sends nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.advisor.serving.test_serve_process import LADDER_KEY, environment, start, stop
from tests.conftest import TICKETS, write_jsonl

pytestmark = pytest.mark.slow  # starts `advisor serve` and runs `advisor assess` as subprocesses

if importlib.util.find_spec("openai") is None:  # found, not imported: collecting this module stays cheap
    pytest.skip("the openai client is the [serve] extra; `make setup` installs it", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[3]
ADVISOR = [sys.executable, "-c", "from advisor.cli.main import main; main()"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("served")
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(folder / "test.jsonl", rows)
    task = folder / "task.yaml"
    task.write_text(f"name: base\nmodel: {tiny_model_dir}\ndata: {{test: test.jsonl}}\n", encoding="utf-8")
    process, url = start(task, folder / "server.log")
    try:
        yield url
    finally:
        stop(process)


def test_remote_rungs_on_our_server_answer_as_the_local_rungs(
    served: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(tmp_path / "train.jsonl", rows[0::2])
    write_jsonl(tmp_path / "test.jsonl", rows[1::2])
    task = tmp_path / "task.yaml"
    generate = "mode: generate, max_new_tokens: 4"
    task.write_text(
        "name: tickets\n"
        f"model: {tiny_model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        f"endpoints:\n  ours: {{base_url: '{served}', model: base, api_key_env: {LADDER_KEY}, tokenizer: task}}\n"
        "rungs:\n"
        "  - zero_shot\n"
        "  - {rung: zero_shot, name: remote, endpoint: ours}\n"
        f"  - {{rung: zero_shot, name: gen, {generate}}}\n"
        f"  - {{rung: zero_shot, name: remote_gen, {generate}, endpoint: ours}}\n"
        "  - {rung: few_shot, name: few, k: 2}\n"
        "  - {rung: few_shot, name: remote_few, k: 2, endpoint: ours}\n"
        "  - {rung: zero_shot, name: remote_parsed, endpoint: ours, scoring: generate, max_new_tokens: 4}\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run.json"
    command = [*ADVISOR, "assess", str(task), "-o", str(out)]
    env = {**environment(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rungs = {r["name"]: r for r in json.loads(out.read_text())["rungs"]}
    assert rungs["remote"]["scoring"] == "echo" and rungs["remote"]["endpoint"]["scoring"] == "echo"
    assert rungs["zero_shot"]["scoring"] == "likelihood" and rungs["remote_parsed"]["scoring"] == "generate"
    for local, remote in (("zero_shot", "remote"), ("few", "remote_few"), ("gen", "remote_gen")):
        here, there = rungs[local]["records"], rungs[remote]["records"]
        assert [r["output"] for r in there] == [r["output"] for r in here], (local, remote)
        assert [r["prompt_tokens"] for r in there] == [r["prompt_tokens"] for r in here], (local, remote)
        assert rungs[remote]["endpoint"]["requests_sent"] == len(here)
    comparisons = json.loads(out.read_text())["comparisons"]
    notes = {(c["a"], c["b"]): c["note"] for c in comparisons}
    assert notes[("zero_shot", "remote")] == ""
    assert "scored differently" in notes[("zero_shot", "remote_parsed")]

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    rerun = {r["name"]: r for r in json.loads(out.read_text())["rungs"]}
    assert all(r["endpoint"]["requests_sent"] == 0 for r in rerun.values() if r["endpoint"])
    assert [r["output"] for r in rerun["remote"]["records"]] == [r["output"] for r in rungs["remote"]["records"]]


def test_echoed_label_likelihoods_equal_the_local_engines(
    served: str, tmp_path: Path, tiny_model: object, tiny_tokenizer: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.data.store import Store
    from harness.inference.answerer import LocalAnswerer, PromptParts
    from harness.inference.engine import Engine
    from harness.inference.prompts import PromptBuilder, PromptFormat
    from harness.remote.answerer import RemoteAnswerer
    from harness.remote.client import EndpointClient
    from harness.remote.endpoint import Endpoint
    from harness.types import Example

    monkeypatch.setenv(LADDER_KEY, environment()[LADDER_KEY])
    labels = ("billing", "technical", "access")
    prompts = PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Route the ticket.", labels=labels))
    parts = [PromptParts(Example(f"r{i}", text, label)) for i, (text, label) in enumerate(TICKETS)]
    local = LocalAnswerer(Engine(tiny_model, tiny_tokenizer), prompts, "m").answer(parts, labels, "score", 4)
    endpoint = Endpoint("ours", served, "base", api_key_env=LADDER_KEY, tokenizer="task")
    store = Store(tmp_path / "store.sqlite")
    remote = RemoteAnswerer(endpoint, lambda: EndpointClient(endpoint), prompts, store, labels)
    answered = remote.answer(parts, labels, "score", 4)
    assert remote.label_mode() == "echo" and remote.sent == len(parts)
    for here, there in zip(local, answered, strict=True):
        assert there.text == here.text and there.timed and there.latency_s > 0
        assert there.prompt_tokens == here.prompt_tokens and there.completion_tokens == here.completion_tokens
        for label in labels:
            assert abs(there.detail["logprobs"][label] - here.detail["logprobs"][label]) < 1e-3
    store.close()
