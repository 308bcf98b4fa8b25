"""Gathering concurrent requests into batches, run one at a time on a single worker thread.

A request becomes a Job with a key (what can run together: the same operation on the same model
with the same settings) and a cost in tokens. The collector waits a short window after the first
job arrives, takes jobs in arrival order while they fit the token budget, groups them by key, and
hands each group to the runner in one call. The runner runs on one worker thread, so model work
never blocks the event loop and two forward passes never run at once (a model is not thread-safe,
and peft's adapter switches are global state).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Runner = Callable[[Hashable, Sequence["Job"]], Sequence[Any]]
"""Runs one group of jobs with equal keys (on the worker thread); one result per job, in order."""


@dataclass
class Job:
    """One unit of model work for one request, and how its result and tokens get back to it."""

    key: Hashable
    payload: Any
    cost: int  # tokens it puts in a batch (prompt plus tokens to generate)
    listener: Callable[[int], None] | None = None  # hears each generated token (on the worker thread)
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """The client went away: skip the job, or end its generation at the next token."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether the client went away."""
        return self._cancelled.is_set()

    def heard(self, token: int) -> bool:
        """A token was generated for this job; False when generation should stop (the client went away)."""
        if self.listener is not None and not self.cancelled:
            self.listener(token)
        return not self.cancelled


class Batcher:
    """Collects jobs for `window_s` after the first arrives, up to `max_batch_tokens`, and runs them."""

    def __init__(
        self, runner: Runner, *, window_s: float = 0.01, max_batch_tokens: int = 8192, max_batch_jobs: int | None = None
    ):
        """`max_batch_jobs`: at most this many jobs per batch (None: as many as fit the token budget)."""
        self._runner = runner
        self.window_s = window_s
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_jobs = max_batch_jobs
        self._pending: deque[Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ladder-serve")
        self.batches: deque[list[Hashable]] = deque(maxlen=256)  # the keys of recent batches (tests read it)

    def start(self) -> None:
        """Start collecting (inside the running event loop)."""
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Stop collecting; jobs still waiting are cancelled (the server finished its requests first)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in self._pending:
            if not job.future.done():
                job.future.cancel()
        self._pending.clear()
        self._worker.shutdown(wait=True)

    async def submit(self, job: Job) -> Any:
        """Queue a job and wait for its result (cancelling the wait cancels the job)."""
        if self._arrived is None:
            raise RuntimeError("the batcher has not been started")
        self._pending.append(job)
        self._arrived.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancel()
            raise

    def _take(self) -> list[Job]:
        """Jobs in arrival order while they fit the token budget (always at least one); cancelled ones dropped."""
        taken: list[Job] = []
        cost = 0
        while self._pending:
            job = self._pending[0]
            if job.cancelled:
                self._pending.popleft()
                job.future.cancel()  # nobody waits for it, but a waiter must not hang
                continue
            if taken and (cost + job.cost > self.max_batch_tokens or len(taken) == self.max_batch_jobs):
                break
            taken.append(self._pending.popleft())
            cost += job.cost
        return taken

    async def _collect(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            await asyncio.sleep(self.window_s)  # let concurrent requests join this batch
            jobs = self._take()
            if not self._pending:
                self._arrived.clear()
            if not jobs:
                continue
            groups: dict[Hashable, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            self.batches.append(list(groups))
            for key, members in groups.items():
                try:
                    results = await loop.run_in_executor(self._worker, self._runner, key, members)
                except Exception as error:  # a bug in one group must not stop the server: its requests get it
                    for job in members:
                        if not job.future.done():
                            job.future.set_exception(error)
                    continue
                for job, result in zip(members, results, strict=True):
                    if not job.future.done():
                        job.future.set_result(result)
