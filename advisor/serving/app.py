"""The FastAPI app: OpenAI's routes, the API key, request limits, and the batcher's lifetime.

Only `advisor serve` imports this module (fastapi is the serve extra). FastAPI reads the routes'
annotations, so what they name is imported at module level.

Bodies are read and parsed here rather than by FastAPI's own validation, so that every bad body
(too large, not JSON, a wrong field) is one 4xx in OpenAI's error shape naming what is wrong.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from advisor.serving.batcher import Batcher
from advisor.serving.bodies import parse_body
from advisor.serving.errors import APIError, ClientGone, from_validation, install_handlers
from advisor.serving.requests import Requests
from advisor.serving.schemas import ChatRequest, CompletionRequest, ModelCard, ModelList, dump

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class AppSettings:
    """Who may call, and how much at once."""

    api_key: str | None = None  # None: no key asked (only allowed on a loopback address)
    max_body_bytes: int = 1 << 20
    max_concurrency: int = 64  # requests in flight (queued or running); more get 429


class _Slots:
    """Requests in flight; the event loop is single-threaded, so a counter is enough."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def check(self) -> None:
        """Answer 429 when every slot is taken."""
        if self.used >= self.limit:
            message = f"too many requests in flight (at most {self.limit}); retry shortly"
            raise APIError(429, message, code="rate_limit_exceeded")

    def take(self) -> None:
        """Take a slot, or answer 429 when all are taken."""
        self.check()
        self.used += 1

    def give_back(self) -> None:
        """Free a slot."""
        self.used -= 1

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A slot for the duration of a block."""
        self.take()
        try:
            yield
        finally:
            self.give_back()


def create_app(
    requests: Requests, batcher: Batcher, settings: AppSettings, details: Callable[[], dict[str, Any]] = dict
) -> Any:
    """The app: the batcher runs for the app's lifetime; uvicorn finishes requests in flight before it stops.

    `details()`: what GET /health reports beside the requests in flight (the passes, the weights in memory).
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="Ladder", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_handlers(app)
    slots = _Slots(settings.max_concurrency)

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # compared in constant time, so the time to answer says nothing about how much of a guess was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.api_key.encode()):
            raise APIError(401, "missing or wrong API key (send Authorization: Bearer <key>)", code="invalid_api_key")

    async def parse(request: Request, model: type[M]) -> M:
        data = parse_body(await _read_body(request, settings.max_body_bytes))
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise from_validation(error, model) from None

    def watcher(request: Request) -> Any:
        async def watch(work: Awaitable[Any]) -> Any:
            return await _unless_disconnected(request, work)

        return watch

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "in_flight": slots.used, **details()}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        authorize(request)
        return dump(ModelList(data=[ModelCard(id=name) for name in requests.catalog.model_ids()]))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        authorize(request)
        body = await parse(request, ChatRequest)
        request_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            slots.check()  # before the stream starts, while a plain 4xx can still be sent
            events = requests.chat_stream(body, request_id)  # checks the request, starts nothing yet
            return StreamingResponse(_held(events, slots), media_type="text/event-stream")
        with slots.hold():
            return JSONResponse(dump(await requests.chat(body, request_id, watcher(request))))

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        authorize(request)
        body = await parse(request, CompletionRequest)
        request_id = f"cmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            slots.check()  # before the stream starts, while a plain 4xx can still be sent
            events = requests.completion_stream(body, request_id)  # checks the request, starts nothing yet
            return StreamingResponse(_held(events, slots), media_type="text/event-stream")
        with slots.hold():
            return JSONResponse(dump(await requests.completion(body, request_id, watcher(request))))

    return app


async def _held(events: AsyncIterator[str], slots: _Slots) -> AsyncIterator[str]:
    """The stream's events, holding a concurrency slot while they flow and freeing it however the stream ends."""
    slots.used += 1  # taken here, not before: a stream that never starts must not keep its slot
    try:
        async for event in events:
            yield event
    finally:
        slots.give_back()


async def _read_body(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"body: larger than this server's {limit} bytes", code="request_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise APIError(413, f"body: larger than this server's {limit} bytes", code="request_too_large")
    return bytes(body)


async def _unless_disconnected(request: Any, work: Awaitable[Any]) -> Any:
    """The result of `work`, or ClientGone (and `work` cancelled, freeing its batch slot) when the client leaves."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        gone.cancel()
    if not task.done() or task.cancelled():
        raise ClientGone()
    return task.result()


async def _disconnect(request: Any) -> None:
    while True:  # the body is already read: the next message is the disconnect
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
