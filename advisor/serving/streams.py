"""Streamed answers: several jobs' text as their tokens are generated, as server-sent events.

A raw job's tokens arrive one by one from the worker thread; the text sent is what decodes safely
so far (no half-decoded character, nothing a stop string may still cut). A rung's answer arrives
whole. A job's end sends whatever text its result has beyond what was sent. A client that leaves
cancels every job it was waiting for: their rows stop at the next token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from advisor.serving.batcher import Batcher, Job
from advisor.serving.schemas import (
    ChatChunk,
    ChunkChoice,
    CompletionChunk,
    CompletionChunkChoice,
    Delta,
    FinishReason,
    Usage,
)


@dataclass(frozen=True)
class Piece:
    """New text of job `index`; with `result`, that job has ended (a Generation, or a rung's Output)."""

    index: int
    text: str
    result: Any = None


async def job_pieces(
    batcher: Batcher, jobs: Sequence[Job], decode: Callable[[list[int]], str], stops: Sequence[str]
) -> AsyncIterator[Piece]:
    """Every job's text as it grows, each job's end last for it; the jobs share the batches."""
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    def listener(index: int) -> Callable[[int], None]:
        def push(token: int) -> None:  # on the worker thread: hand the token to the event loop
            loop.call_soon_threadsafe(tokens.put_nowait, (index, token))

        return push

    for index, job in enumerate(jobs):
        job.listener = listener(index)
    works = [asyncio.ensure_future(batcher.submit(job)) for job in jobs]
    heard: list[list[int]] = [[] for _ in jobs]
    sent = [""] * len(jobs)
    ended: set[int] = set()
    try:
        while len(ended) < len(jobs):
            next_token = asyncio.ensure_future(tokens.get())
            running = {work for index, work in enumerate(works) if index not in ended}
            await asyncio.wait({next_token, *running}, return_when=asyncio.FIRST_COMPLETED)
            if next_token.done():
                index, token = next_token.result()
                if index in ended:  # heard after its job's end: the end sent the rest already
                    continue
                heard[index].append(token)
                safe = safe_text(decode(heard[index]), stops)
                if len(safe) > len(sent[index]):
                    yield Piece(index, safe[len(sent[index]) :])
                    sent[index] = safe
                continue
            next_token.cancel()
            for index, work in enumerate(works):
                if work.done() and index not in ended:
                    ended.add(index)
                    result = work.result()
                    text: str = result.text
                    yield Piece(index, text[len(sent[index]) :] if text.startswith(sent[index]) else "", result)
    finally:
        for job, work in zip(jobs, works, strict=True):
            if not work.done():  # the client went away: its rows stop at the next token
                job.cancel()
                work.cancel()


def safe_text(text: str, stops: Sequence[str]) -> str:
    """What can be sent already: not a half-decoded character, nothing a stop string may still cut."""
    text = text.rstrip("\ufffd")
    for stop in stops:
        if stop in text:
            text = text[: text.index(stop)]
    hold = max((len(s) - 1 for s in stops), default=0)
    return text[: len(text) - hold] if hold else text


def chat_chunker(model: str, request_id: str) -> Callable[..., str]:
    """A chat completion's server-sent events: a delta (None: the usage chunk, with no choices)."""

    def chunk(delta: Delta | None, finish: FinishReason | None = None, usage: Usage | None = None) -> str:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        event = ChatChunk(id=request_id, model=model, choices=choices, usage=usage)
        return f"data: {event.model_dump_json(exclude_none=delta is not None)}\n\n"

    return chunk


def completion_chunker(model: str, request_id: str) -> Callable[..., str]:
    """A text completion's server-sent events: one prompt's new text (index None: the usage chunk)."""

    def chunk(index: int | None, text: str = "", finish: FinishReason | None = None, usage: Usage | None = None) -> str:
        choices = [] if index is None else [CompletionChunkChoice(index=index, text=text, finish_reason=finish)]
        event = CompletionChunk(id=request_id, model=model, choices=choices, usage=usage)
        return f"data: {event.model_dump_json(exclude=None if usage is not None else {'usage'})}\n\n"

    return chunk


DONE = "data: [DONE]\n\n"
