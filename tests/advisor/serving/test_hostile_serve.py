"""Hostile requests to `advisor serve`'s app, in process: each is a 4xx in OpenAI's error shape, never a 500.

The app is driven through ASGI directly (no socket, no model): a fake runner answers the batcher's jobs,
so only the request handling is tested. The real server is tested in tests/advisor/serving/test_serve_process.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import pytest

from advisor.serving.app import AppSettings, create_app
from advisor.serving.batcher import Batcher, Job
from advisor.serving.catalog import Catalog, build_catalog
from advisor.serving.execution import Generate, Logprobs
from advisor.serving.requests import Limits, Requests
from advisor.task.rung_plan import plan_rungs
from harness.inference.engine import Generation, TokenLogprob
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.types import Output

Reply = tuple[int, dict[str, Any]]


def fake_runner(key: Hashable, jobs: Sequence[Job]) -> list[Any]:
    """Every job answered in the shape its kind of work returns, without a model."""
    if isinstance(key, Generate):
        return [Generation("billing", 1, (5,)) for _ in jobs]
    if isinstance(key, Logprobs):
        return [[TokenLogprob(t, -1.0) for t in job.payload.tokens[1:]] for job in jobs]
    return [Output("billing", 3, 1, 0.0) for _ in jobs]


def post_all(tokenizer: Any, posts: Sequence[tuple[str, bytes]], catalog: Catalog | None = None) -> list[Reply]:
    """Each (path, raw body) posted to a fresh app (by default serving the base and a zero_shot rung)."""
    prompts = PromptBuilder(tokenizer, PromptFormat(instruction="Route the ticket.", labels=("billing", "technical")))
    catalog = catalog or build_catalog("tiny", [], plan_rungs(["zero_shot"], "t"), [], "task.yaml")
    batcher = Batcher(fake_runner, window_s=0.0)
    requests = Requests(catalog, batcher, prompts, prompts, ("billing", "technical"), set(), Limits())
    app = create_app(requests, batcher, AppSettings())

    async def main() -> list[Reply]:
        batcher.start()
        try:
            return [await asgi_post(app, path, body) for path, body in posts]
        finally:
            await batcher.stop()

    return asyncio.run(main())


async def asgi_post(app: Any, path: str, body: bytes) -> Reply:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until it is answered
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with contextlib.suppress(Exception):  # Starlette re-raises a 500's cause after sending it; the status counts
        await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if not payload.startswith(b"{"):  # a stream's events
        return status, {"events": payload.decode()}
    return status, json.loads(payload)


def chat_body(content: str, model: str = "base") -> bytes:
    """A chat request as JSON text; ensure_ascii writes a lone surrogate as its escape, as a client would send it."""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}, ensure_ascii=True).encode()


def assert_openai_error(reply: Reply, status: int, words: str) -> None:
    code, body = reply
    assert code == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error" and words in body["error"]["message"]


def test_a_plain_request_is_answered(tiny_tokenizer: Any) -> None:
    (reply,) = post_all(tiny_tokenizer, [("/v1/chat/completions", chat_body("I was charged twice"))])
    assert reply[0] == 200 and reply[1]["choices"][0]["message"]["content"] == "billing"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", chat_body("a\ud800b")),
        ("/v1/chat/completions", chat_body("a\udfffb", model="zero_shot")),
        ("/v1/chat/completions", chat_body("hi", model="base\ud800")),
        ("/v1/completions", json.dumps({"model": "base", "prompt": ["ok", "x\udc80"]}).encode()),
        ("/v1/chat/completions", b'{"model": "base", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}'),
    ],
    ids=["chat-content", "rung-content", "model-name", "completion-prompt", "raw-surrogate-bytes"],
)
def test_a_lone_surrogate_is_a_400_naming_the_problem(tiny_tokenizer: Any, path: str, body: bytes) -> None:
    (reply,) = post_all(tiny_tokenizer, [(path, body)])
    assert_openai_error(reply, 400, "not valid")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"model": "base", "messages": ' + b"[" * 200 + b"]" * 200 + b"}",
    ],
    ids=["arrays", "objects", "inside-a-request"],
)
def test_a_deeply_nested_body_is_a_400(tiny_tokenizer: Any, body: bytes) -> None:
    (reply,) = post_all(tiny_tokenizer, [("/v1/chat/completions", body)])
    assert_openai_error(reply, 400, "nested deeper than")


def test_the_echo_hint_names_a_model_that_is_served(tiny_tokenizer: Any) -> None:
    echo = json.dumps({"model": "zero_shot", "prompt": "hi", "max_tokens": 0, "echo": True, "logprobs": 0}).encode()
    (refused,) = post_all(tiny_tokenizer, [("/v1/completions", echo)])
    assert_openai_error(refused, 400, "logprobs, echo")
    hinted = refused[1]["error"]["message"].split("use '")[1].split("'")[0]
    assert hinted != "zero_shot:raw"
    body = json.dumps({"model": hinted, "prompt": "hi", "max_tokens": 1}).encode()
    (answered,) = post_all(tiny_tokenizer, [("/v1/completions", body)])
    assert answered[0] == 200, answered[1]


def test_the_echo_hint_for_a_tuned_rung_names_its_raw_route(tiny_tokenizer: Any, tmp_path: Path) -> None:
    lora = plan_rungs([{"rung": "lora", "r": 4}], "t")[0]
    catalog = build_catalog("tiny", [(lora, "lora", tmp_path)], [], [], "task.yaml")
    echo = json.dumps({"model": "lora", "prompt": "hi", "max_tokens": 0, "echo": True, "logprobs": 0}).encode()
    (refused,) = post_all(tiny_tokenizer, [("/v1/completions", echo)], catalog)
    assert_openai_error(refused, 400, "use 'lora:raw' or 'base'")
    assert {"lora:raw", "base"} <= set(catalog.model_ids())


@pytest.mark.parametrize(
    ("content", "field"),
    [(5, "messages.0.content"), ([{"type": "text"}], "messages.0.content.0.text"), ({"a": 1}, "messages.0.content")],
)
def test_a_bad_field_is_named_without_the_types_of_a_union(tiny_tokenizer: Any, content: Any, field: str) -> None:
    body = json.dumps({"model": "base", "messages": [{"role": "user", "content": content}]}).encode()
    (reply,) = post_all(tiny_tokenizer, [("/v1/chat/completions", body)])
    assert_openai_error(reply, 400, f"{field}: ")
    assert reply[1]["error"]["param"] == field
    message = reply[1]["error"]["message"]
    assert not any(branch in message for branch in ("str", "list[", "TextPart", "function-")), message


def test_an_unknown_model_of_any_length_is_a_short_404(tiny_tokenizer: Any) -> None:
    (reply,) = post_all(tiny_tokenizer, [("/v1/chat/completions", chat_body("hi", model="x" * 100_000))])
    assert_openai_error(reply, 404, "is not served here")
    assert len(reply[1]["error"]["message"]) < 200
