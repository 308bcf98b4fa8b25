"""A prompting rung's prompts answered by an endpoint: concurrent, stored as they arrive, resumable.

Every answer is written to the store the moment it arrives, keyed by the endpoint and the request
body, so a run killed mid-way sends only what it had not been answered, and a re-run sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

from harness.data.hashing import content_hash
from harness.data.store import Store
from harness.errors import LadderError
from harness.inference.answerer import PromptParts, with_detail
from harness.inference.answering import Mode
from harness.inference.prompts import PromptBuilder
from harness.remote.client import EndpointClient, Reply
from harness.remote.endpoint import Endpoint, Scoring
from harness.remote.probe import probe_scoring
from harness.remote.scoring import Request, chat_request, echo_request, read_chat, read_echo
from harness.types import Output


@dataclass(frozen=True)
class _Pending:
    """One prompt's request, its store key, and how its reply becomes an output."""

    key: str
    example_id: str
    request: Request
    read: Callable[[dict[str, Any]], Output]


class RemoteAnswerer:
    """Answers through one endpoint with the mode the probe (or the rung's `scoring:`) chose."""

    def __init__(
        self,
        endpoint: Endpoint,
        client: Callable[[], EndpointClient],
        prompts: PromptBuilder,
        store: Store,
        labels: Sequence[str],
        scoring: Scoring = "auto",
    ):
        self.endpoint = endpoint
        self._client_factory = client
        self._client: EndpointClient | None = None
        self.prompts = prompts
        self.store = store
        self.labels = tuple(labels)
        self.requested = scoring
        self._mode: str | None = None
        self.sent = 0  # requests answered by the endpoint in this process (stored ones excluded)

    def client(self) -> EndpointClient:
        """The HTTP client, made on first use (the key is read then)."""
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def label_mode(self) -> str:
        """How labels are scored here: the rung's choice, else the best the endpoint offers (probed once)."""
        if self._mode is None:
            if self.requested != "auto":
                self._mode = self.requested
            elif not self.labels:
                self._mode = "generate"
            else:
                self._mode = probe_scoring(self.endpoint, self.client, self.store)
        return self._mode

    def fingerprint(self) -> str:
        """The endpoint and the way its answers are read."""
        return content_hash(self.endpoint.fingerprint(), self.label_mode())

    def prepare(self) -> None:
        """Nothing: each request is timed on its own, the endpoint's own warm-up included as a user sees it."""

    def scoring(self, mode: Mode) -> str:
        """The label mode when scoring; generation otherwise."""
        return self.label_mode() if mode == "score" else "generate"

    def answer(
        self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, max_new_tokens: int
    ) -> list[Output]:
        """One request per prompt, `max_concurrency` at a time; stored answers are not asked again."""
        pending = [self._pending(p, labels, mode, max_new_tokens) for p in parts]
        replies: dict[str, dict[str, Any]] = {}
        todo: dict[str, _Pending] = {}  # by key: two identical prompts are one request
        for item in pending:
            stored = self.store.get_response(item.key)
            if stored is None:
                todo[item.key] = item
            else:
                replies[item.key] = stored
        replies.update(self._send(list(todo.values())))
        outputs = []
        for item, part in zip(pending, parts, strict=True):
            reply = replies[item.key]
            output = item.read(reply["body"])
            extra = {"attempts": reply["attempts"], "scoring": self.scoring(mode)}
            outputs.append(
                with_detail(replace(output, latency_s=reply["latency_s"], detail={**output.detail, **extra}), part)
            )
        return outputs

    def _pending(self, part: PromptParts, labels: Sequence[str], mode: Mode, max_new_tokens: int) -> _Pending:
        model = self.endpoint.model
        scoring = self.scoring(mode)
        if scoring == "echo":
            prompt = self.prompts.text(part.example, part.demos, part.passages)
            request = echo_request(model, prompt, [self.prompts.choice_text(label) for label in labels])

            def read(body: dict[str, Any]) -> Output:
                return read_echo(body, prompt, labels)

        else:
            messages = self.prompts.messages(part.example, part.demos, part.passages)
            use_logprobs = scoring == "logprobs"
            request = chat_request(model, messages, max_new_tokens, use_logprobs)

            def read(body: dict[str, Any]) -> Output:
                return read_chat(body, labels if mode == "score" else (), use_logprobs)

        key = content_hash("response", self.endpoint.fingerprint(), request.path, request.body)
        return _Pending(key, part.example.id, request, read)

    def _send(self, todo: Sequence[_Pending]) -> dict[str, dict[str, Any]]:
        """Send, `max_concurrency` at a time; each answer is stored as it arrives; the first failure stops the rest."""
        if not todo:
            return {}
        client = self.client()
        answered: dict[str, dict[str, Any]] = {}
        failure: LadderError | None = None
        with ThreadPoolExecutor(max_workers=self.endpoint.max_concurrency, thread_name_prefix="endpoint") as pool:
            futures: dict[Future[Reply], _Pending] = {
                pool.submit(
                    client.post, item.request.path, item.request.body, item.read, f"row {item.example_id!r}"
                ): item
                for item in todo
            }
            for future in as_completed(futures):
                item = futures[future]
                try:
                    reply = future.result()
                except LadderError as error:
                    failure = failure or error
                    for other in futures:
                        other.cancel()
                    continue
                payload = {"body": reply.body, "latency_s": reply.latency_s, "attempts": reply.attempts}
                self.store.put_response(item.key, payload)
                answered[item.key] = payload
                self.sent += 1
        if failure is not None:
            raise failure
        return answered
