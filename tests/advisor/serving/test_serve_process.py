"""The real `advisor serve` in a subprocess on a free port of 127.0.0.1, spoken to with the `openai` client.

One trained LoRA rung of a tiny task answers through the server exactly as `advisor assess` answered
it, alone and in mixed-adapter batches; bad requests get OpenAI's error shape; SIGTERM lets a
request in flight finish.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TICKETS, write_jsonl

pytestmark = pytest.mark.slow  # trains, assesses and starts servers as subprocesses

# the openai client is imported by the tests that use it: collecting this module (`make test-fast` too) stays cheap
if importlib.util.find_spec("openai") is None:
    pytest.skip("the openai client is the [serve] extra; `make setup` installs it", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[3]
ADVISOR = [sys.executable, "-c", "from advisor.cli.main import main; main()"]
KEY = "test-key-not-secret"
TUNING = "r: 2, epochs: 1, search: false, batch_tokens: 256, max_batch_size: 4"


@dataclass(frozen=True)
class Server:
    """A running server and what the assessment answered for the same inputs."""

    url: str
    process: subprocess.Popen[str]
    task: Path
    log: Path
    answers: dict[str, dict[str, str]]  # rung -> input text -> the assessment's output
    inputs: list[str]

    def client(self, key: str = KEY) -> Any:
        import openai

        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=120)


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0", LADDER_KEY: KEY}


LADDER_KEY = "LADDER_TEST_SERVE_KEY"


def advisor(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*ADVISOR, *args], env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(task: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """The server on a free port, its stderr in `log` (a pipe nobody reads could fill and block it)."""
    port = free_port()
    command = [*ADVISOR, "serve", str(task), "--port", str(port), "--api-key-env", LADDER_KEY, *extra]
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL, stderr=sink, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the server did not start: {log.read_text()}")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve-task")
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(folder / "train.jsonl", rows[0::2])
    write_jsonl(folder / "test.jsonl", rows[1::2])
    task = folder / "task.yaml"
    task.write_text(
        "name: tickets\n"
        f"model: {tiny_model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        "rungs:\n"
        "  - zero_shot\n"
        f"  - {{rung: lora, {TUNING}}}\n"
        f"  - {{rung: lora, name: lora_gen, mode: generate, max_new_tokens: 4, {TUNING}}}\n"
        f"  - {{rung: lora, name: lora_wide, r: 8, epochs: 1, search: false}}\n"
        "  - {rung: ia3, epochs: 1, search: false, batch_tokens: 256, max_batch_size: 4}\n"
        f"  - {{rung: qlora, {TUNING}}}\n"
        "evaluation: {latency_sample: 1, bootstrap_resamples: 100}\n"
        "forgetting: {max_items: 10}\n",
        encoding="utf-8",
    )
    out = folder / "run.json"
    # one process trains lora, ia3 (not LoRA: served on a model of its own) and qlora (stacked on the nf4 base) and
    # assesses them; a separate `advisor train` for each first cost more processes for the same cached adapters
    advisor("assess", str(task), "--rungs", "zero_shot,lora,lora_gen,ia3,qlora", "-o", str(out))
    assessed = json.loads(out.read_text())
    artifact = next(rung["training"]["artifact"] for rung in assessed["rungs"] if rung["name"] == "lora")
    texts = {row["id"]: row["text"] for row in rows}
    answers = {
        rung["name"]: {texts[record["id"]]: record["output"] for record in rung["records"]}
        for rung in assessed["rungs"]
    }
    process, url = start(task, folder / "server.log", "--adapter", f"extra={artifact}", "--max-adapters", "2")
    try:
        yield Server(url, process, task, folder / "server.log", answers, [row["text"] for row in rows[1::2]])
    finally:
        if process.poll() is None:
            stop(process)


def chat(client: Any, model: str, text: str, **options: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **options)


def raw_post(server: Server, path: str, body: bytes, key: str | None = KEY) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(server.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def declared_post(server: Server, path: str, length: int) -> tuple[int, dict[str, Any]]:
    """A POST that declares a `length`-byte body and sends none of it: the server must refuse it on the header.

    Sending the body too raced with the refusal: the server answers 413 and closes without reading it, and the
    client's write then failed with a broken pipe before it could read the answer.
    """
    url = urllib.parse.urlsplit(server.url + path)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    try:
        connection.putrequest("POST", url.path)
        for name, value in {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=5) as response:
        return dict(json.loads(response.read()))


def test_models_lists_the_base_every_trained_rung_and_the_extra_adapter(server: Server) -> None:
    ids = [model.id for model in server.client().models.list().data]
    assert ids == [
        *("base", "lora", "lora:raw", "lora_gen", "lora_gen:raw", "ia3", "ia3:raw", "qlora", "qlora:raw"),
        *("extra", "zero_shot"),
    ]


def test_a_rung_answers_through_the_server_as_the_assessment_answered(server: Server) -> None:
    client = server.client()
    for rung in ("lora", "lora_gen", "ia3", "qlora", "zero_shot"):
        for text in server.inputs:
            response = chat(client, rung, text)
            assert response.choices[0].message.content == server.answers[rung][text], (rung, text)
            assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    weights = health(server.url)["weight_bytes"]  # qlora stacked on the run's nf4 base, not a model of its own
    assert weights["shared_nf4_base"] > 0 and "qlora" in weights["adapters"] and "qlora" not in weights["own_models"]


def test_concurrent_requests_for_different_adapters_get_the_answers_they_get_alone(server: Server) -> None:
    client = server.client()
    models = ("lora", "lora_gen:raw", "base", "extra", "zero_shot", "ia3", "ia3:raw")
    asks = [(model, text) for text in server.inputs for model in models]
    alone = [chat(client, model, text, max_tokens=5).choices[0].message.content for model, text in asks]
    before = health(server.url)["shared_passes"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        together = list(pool.map(lambda ask: chat(client, *ask, max_tokens=5).choices[0].message.content, asks))
    after = health(server.url)["shared_passes"]
    assert together == alone
    # the server's own count: some forward pass held rows for different adapters (lora_gen, extra, base)
    assert after["mixed"] > before["mixed"] and after["most_adapters"] >= 2
    assert after["passes"] - before["passes"] < after["rows"] - before["rows"]
    assert {a for (model, _), a in zip(asks, alone, strict=True) if model == "lora"} <= {
        "billing",
        "technical",
        "access",
    }


def test_a_streamed_chat_says_what_the_whole_answer_says(server: Server) -> None:
    client = server.client()
    whole = chat(client, "lora:raw", server.inputs[0], max_tokens=8)
    chunks = list(
        chat(client, "lora:raw", server.inputs[0], max_tokens=8, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_streamed_completions_say_per_prompt_what_the_whole_answers_say(server: Server) -> None:
    """Two prompts in one request (their tokens interleave in the stream, each under its index), raw and through a
    rung; the usage chunk last; logprobs are not streamed (a plain 400 before any byte)."""
    client = server.client()
    prompts = [f"Ticket: {text}\nAnswer:" for text in server.inputs[:2]]
    for model, options in (("lora:raw", {"max_tokens": 6}), ("lora", {})):
        whole = client.completions.create(model=model, prompt=prompts, **options)
        chunks = list(
            client.completions.create(
                model=model, prompt=prompts, stream=True, stream_options={"include_usage": True}, **options
            )
        )
        for index, choice in enumerate(whole.choices):
            mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == index]
            assert "".join(c.text for c in mine) == choice.text
            assert mine[-1].finish_reason == choice.finish_reason
        assert not chunks[-1].choices and chunks[-1].usage == whole.usage
    status, error = raw_post(server, "/completions", b'{"model": "base", "prompt": "x", "stream": true, "logprobs": 1}')
    assert status == 400 and error["error"]["param"] == "stream"


def test_echo_with_logprobs_scores_a_prompt_token_by_token(server: Server) -> None:
    prompt = "Ticket: I was charged twice. Answer: billing"
    response = server.client().completions.create(model="base", prompt=prompt, max_tokens=0, echo=True, logprobs=2)
    logprobs = response.choices[0].logprobs
    assert response.choices[0].text == prompt and "".join(logprobs.tokens) == prompt
    assert logprobs.token_logprobs[0] is None and all(v < 0 for v in logprobs.token_logprobs[1:])
    assert all(len(top) == 2 for top in logprobs.top_logprobs[1:])
    assert logprobs.text_offset[0] == 0 and response.usage.prompt_tokens == len(logprobs.tokens)
    generated = server.client().completions.create(model="extra", prompt=prompt, max_tokens=3, logprobs=0)
    assert len(generated.choices[0].logprobs.tokens) == generated.usage.completion_tokens


def test_label_choices_scored_through_echo_equal_the_in_process_scores(
    server: Server, tiny_model: Any, tiny_tokenizer: Any
) -> None:
    from harness.inference.engine import ChoiceRequest, Engine

    context = "Ticket: I was charged twice. Answer:"
    choices = [" billing", " technical", " access"]

    def encode(text: str) -> list[int]:
        return list(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])

    context_ids = encode(context)
    in_process = Engine(tiny_model, tiny_tokenizer).score(
        [ChoiceRequest(tuple(context_ids), tuple(tuple(encode(c)) for c in choices))]
    )[0]
    for choice, expected in zip(choices, in_process, strict=True):
        assert encode(context + choice) == context_ids + encode(choice)  # the boundary tokenises the same
        response = server.client().completions.create(
            model="base", prompt=context + choice, max_tokens=0, echo=True, logprobs=0
        )
        served = response.choices[0].logprobs.token_logprobs[len(context_ids) :]
        assert sum(served) == pytest.approx(expected, abs=1e-3)


def test_bad_requests_get_one_clear_message_in_openai_shape(server: Server) -> None:
    import openai

    client = server.client()
    with pytest.raises(openai.NotFoundError, match="model 'lorra' is not served here; did you mean lora"):
        chat(client, "lorra", "hi")
    with pytest.raises(openai.NotFoundError, match="not trained yet"):
        chat(client, "lora_wide", "hi")
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        chat(client, "base", "hi", max_tokens=-1)
    with pytest.raises(openai.BadRequestError, match="max_tokens: at most 1024"):
        chat(client, "base", "hi", max_tokens=5000)
    with pytest.raises(openai.AuthenticationError):
        chat(server.client(key="wrong"), "base", "hi")
    status, body = raw_post(server, "/chat/completions", b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = raw_post(server, "/chat/completions", json.dumps({"model": "base", "messages": [], "x": 1}).encode())
    assert status == 400 and body["error"]["param"] in ("messages", "x")
    status, body = raw_post(server, "/chat/completions", json.dumps({"model": "base", "messages": "hi"}).encode())
    assert status == 400 and body["error"]["param"] == "messages"
    status, body = raw_post(
        server, "/completions", json.dumps({"model": "base", "prompt": "hi", "max_tokens": "x"}).encode()
    )
    assert status == 400 and body["error"]["param"] == "max_tokens"
    status, body = declared_post(server, "/chat/completions", 2 << 20)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    status, body = raw_post(server, "/chat/completions", b"{}", key=None)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = raw_post(server, "/no/such/route", b"{}")
    assert status == 404 and set(body["error"]) == {"message", "type", "param", "code"}


def test_the_server_says_where_it_listens_and_nothing_else_on_stderr(server: Server) -> None:
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    assert any(line.startswith("serving 11 models on http://127.0.0.1:") for line in lines), lines
    assert not [line for line in lines if "arning" in line or "Traceback" in line], lines


def test_sigterm_lets_a_request_in_flight_finish(server: Server, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process, url = start(server.task, log)  # a server of its own: this test stops it
    try:
        client = Server(url, process, server.task, log, {}, []).client()
        stream = chat(client, "base", server.inputs[0], max_tokens=64, stream=True)
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        process.send_signal(signal.SIGTERM)
        rest = list(stream)
        assert rest and rest[-1].choices[0].finish_reason in ("stop", "length")
        process.wait(timeout=60)
        assert process.returncode in (0, -signal.SIGTERM)
        assert "Traceback" not in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()


def test_a_client_that_leaves_mid_generation_frees_its_slot(server: Server, tmp_path: Path) -> None:
    import openai

    log = tmp_path / "server.log"
    process, url = start(server.task, log, "--max-concurrency", "1")  # one slot: a held one shows at once
    try:
        client = Server(url, process, server.task, log, {}, []).client()
        stream = chat(client, "base", server.inputs[0], max_tokens=512, stream=True)
        next(iter(stream))
        with pytest.raises(openai.RateLimitError, match="too many requests in flight"):
            chat(client, "base", server.inputs[1], max_tokens=2)
        stream.close()  # the client goes away mid-generation
        deadline = time.monotonic() + 30
        while health(url)["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health(url)["in_flight"] == 0
        answer = chat(client, "base", server.inputs[1], max_tokens=2)  # the freed slot takes it: no 429
        assert answer.usage.completion_tokens <= 2
        assert "Traceback" not in log.read_text()
    finally:
        stop(process)
