"""The HTTP side of an endpoint: the openai SDK's client with our limits, and replies checked for shape.

The SDK retries 408/409/429/5xx, timeouts and dropped connections with exponential backoff and
jitter, honouring `Retry-After`; we add the run's request budget (every attempt counts), a bounded
retry of answers that arrive malformed (truncated or wrong JSON, a wrong shape), and errors of one
line that never carry the key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from harness.errors import InputError, RunError
from harness.remote.endpoint import Endpoint

MALFORMED_RETRIES = 2  # extra tries of a request whose answer could not be read


class EndpointError(RunError):
    """An endpoint refused or failed a request for good.

    `status`: the HTTP status when it answered with an error; `malformed`: it answered, but never in a
    shape that could be read.
    """

    def __init__(self, message: str, status: int | None = None, malformed: bool = False):
        super().__init__(message)
        self.status = status
        self.malformed = malformed


@dataclass(frozen=True)
class Reply:
    """A checked answer, its wall time (retries included) and how many HTTP attempts it took."""

    body: dict[str, Any]
    latency_s: float
    attempts: int


class EndpointClient:
    """Posts JSON to one endpoint; thread-safe, so a pool of workers can share it."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self._key = endpoint.api_key()  # a missing variable fails here, before any request
        self._lock = threading.Lock()
        self.attempts = 0
        openai = _import_openai(endpoint)
        self._http = openai.DefaultHttpxClient(event_hooks={"request": [self._count_attempt]})
        self._client = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=self._key or "no-key",  # the SDK insists on one; servers without keys ignore it
            timeout=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
            http_client=self._http,
        )
        self._errors = openai

    def _count_attempt(self, request: Any) -> None:
        with self._lock:
            self.attempts += 1

    def post(self, path: str, body: dict[str, Any], check: Callable[[dict[str, Any]], object], what: str) -> Reply:
        """POST `body` to `path` and return the answer once `check` reads it without a ValueError.

        `what` names the request in errors (an example's id, "the probe").
        """
        started = time.perf_counter()
        before = self.attempts
        problem = ""
        for _ in range(1 + MALFORMED_RETRIES):
            self._check_budget()
            raw = self._send(path, body, what)
            try:
                parsed = json.loads(raw)
                if not isinstance(parsed, dict):
                    raise ValueError(f"expected a JSON object, got {type(parsed).__name__}")
                check(parsed)
            except (ValueError, ValidationError) as error:
                problem = _describe(error)
                continue
            return Reply(parsed, time.perf_counter() - started, self.attempts - before)
        message = f"{self.endpoint.where}: {path} for {what} answered {problem}, {1 + MALFORMED_RETRIES} times"
        raise EndpointError(self._redact(message), malformed=True)

    def _check_budget(self) -> None:
        limit = self.endpoint.max_requests
        if self.attempts >= limit:
            raise EndpointError(
                f"{self.endpoint.where}.max_requests: this run's budget of {limit} requests is spent; every "
                "answer so far is stored, so raising the budget and running again continues from here"
            )

    def _send(self, path: str, body: dict[str, Any], what: str) -> bytes:
        errors = self._errors
        where = f"{self.endpoint.where} ({self.endpoint.base_url})"
        try:
            response = self._client.post(path, body=body, cast_to=_raw_response_type())
        except errors.APIStatusError as error:
            status = error.status_code
            hint = f" (check the key in ${self.endpoint.api_key_env})" if status in (401, 403) else ""
            detail = _server_message(error.response)
            retried = status in (408, 409, 429) or status >= 500
            tries = f" after {self.endpoint.max_retries} retries" if retried else ""
            message = f"{where}: {path} for {what} failed with HTTP {status}{tries}{hint}: {detail}"
            raise EndpointError(self._redact(message), status) from None
        except errors.APITimeoutError:
            message = f"{where}: {path} for {what} had no answer within {self.endpoint.timeout_s:g} s"
            raise EndpointError(f"{message}, {self.endpoint.max_retries} retries included") from None
        except errors.APIConnectionError as error:
            cause = error.__cause__ or error
            message = f"{where}: cannot reach it for {what} ({type(cause).__name__}: {cause})"
            raise EndpointError(self._redact(message)) from None
        return bytes(response.content)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def _raw_response_type() -> Any:
    import httpx2  # the SDK's own HTTP library: asking for its Response returns the body unparsed

    return httpx2.Response


def _server_message(response: Any) -> str:
    """The error message an OpenAI-style error body carries, else the start of the body."""
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except (ValueError, AttributeError):
        message = None
    text = str(message or response.text or "no message")
    return text if len(text) <= 200 else text[:197] + "..."


def _describe(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"with malformed JSON ({error.msg} at character {error.pos})"
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return f"with an unexpected shape ({field}: {first['msg']})"
    return f"with an unexpected shape ({str(error).splitlines()[0][:120]})"


def _import_openai(endpoint: Endpoint) -> Any:
    try:
        import openai
    except ImportError:
        raise InputError(
            f"{endpoint.where}: endpoints need the openai client: pip install 'ladder-advisor[remote]'"
        ) from None
    return openai
