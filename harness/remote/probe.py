"""Which scoring mode an endpoint offers, asked once with a tiny request and remembered in the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.data.hashing import content_hash
from harness.data.store import Store
from harness.remote.client import EndpointClient, EndpointError
from harness.remote.endpoint import Endpoint
from harness.remote.replies import ChatReply, CompletionReply

PROBE_VERSION = 2  # 2: the echo probe has several tokens (a one-token prompt has no logprob to echo)


def probe_scoring(endpoint: Endpoint, client: Callable[[], EndpointClient], store: Store) -> str:
    """`echo` when the endpoint reads prompts like the task's model and echoes logprobs; else `logprobs`
    when its chat answers carry top_logprobs; else `generate`. A 4xx means "not offered"; anything
    else (down, 5xx after retries) is an error."""
    key = content_hash("probe", PROBE_VERSION, endpoint.fingerprint())
    stored = store.get_response(key)
    if stored is not None:
        return str(stored["mode"])
    mode = "generate"
    if endpoint.tokenizer == "task" and _offers(client(), "/completions", _ECHO, _echoes):
        mode = "echo"
    elif _offers(client(), "/chat/completions", _CHAT, _has_top_logprobs):
        mode = "logprobs"
    store.put_response(key, {"mode": mode})
    return mode


# the first token of a prompt has no logprob, so the probe needs several (a bare "Hello" is one token)
_ECHO: dict[str, Any] = {"prompt": ["Hello, how are you today?"], "max_tokens": 0, "echo": True, "logprobs": 0}
_CHAT: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Say yes."}],
    "max_tokens": 1,
    "temperature": 0,
    "logprobs": True,
    "top_logprobs": 5,
}


def _offers(client: EndpointClient, path: str, body: dict[str, Any], check: Callable[[dict[str, Any]], None]) -> bool:
    try:
        client.post(path, {"model": client.endpoint.model, **body}, check, "the scoring probe")
    except EndpointError as error:
        if error.status is not None and 400 <= error.status < 500 and error.status not in (401, 403, 429):
            return False
        if error.malformed:  # it answers, but not in the shape this mode needs
            return False
        raise
    return True


def _echoes(body: dict[str, Any]) -> None:
    logprobs = CompletionReply.model_validate(body).choices[0].logprobs
    if logprobs is None or not any(v is not None for v in logprobs.token_logprobs):
        raise ValueError("no echoed token logprobs")


def _has_top_logprobs(body: dict[str, Any]) -> None:
    logprobs = ChatReply.model_validate(body).choices[0].logprobs
    if logprobs is None or not logprobs.content or not logprobs.content[0].top_logprobs:
        raise ValueError("no top_logprobs on the answer")
