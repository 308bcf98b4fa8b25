"""From a validated OpenAI request to the jobs that answer it, and from their results to OpenAI's response.

Raw routes (`base`, `NAME:raw`, `--adapter` names) send the messages through the model's chat
template (or a completion's prompt as text) and generate greedily. Rung routes put the last user
message (or the prompt) into the rung's own prompt and answer exactly as `advisor assess` does: a
classification rung picks its label by likelihood, whatever `max_tokens` says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from advisor.serving.batcher import Batcher, Job
from advisor.serving.catalog import BASE, RAW, Catalog, Route
from advisor.serving.errors import APIError
from advisor.serving.execution import (
    Answer,
    ExampleWork,
    Generate,
    Logprobs,
    PromptWork,
    RungAnswer,
    TokensWork,
    group_of,
)
from advisor.serving.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatRequest,
    ChatResponse,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    Delta,
    FinishReason,
    Usage,
)
from advisor.serving.streams import DONE, chat_chunker, completion_chunker, job_pieces
from harness.errors import InputError
from harness.inference.engine import Generation, TokenLogprob
from harness.inference.prompts import PromptBuilder
from harness.types import Example, Output

_RUNG_COST = 64  # tokens a prompting rung's answer is assumed to add to its question, for the batch budget

Watch = Callable[[Awaitable[Any]], Awaitable[Any]]
"""Awaits a result, giving up (and cancelling the work) when the client disconnects."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_tokens: int = 1024  # the most tokens one request may generate
    default_max_tokens: int = 256  # a chat request that sets no limit
    max_prompt_tokens: int = 4096


class Requests:
    """Answers chat and text completions through the batcher."""

    def __init__(
        self,
        catalog: Catalog,
        batcher: Batcher,
        task_prompts: PromptBuilder,
        tuned_prompts: PromptBuilder,
        labels: Sequence[str],
        end_ids: set[int],
        limits: Limits,
    ):
        self.catalog = catalog
        self.batcher = batcher
        self.task_prompts = task_prompts
        self.tuned_prompts = tuned_prompts
        self.tokenizer = task_prompts.tokenizer
        self.labels = tuple(labels)
        self.end_ids = end_ids
        self.limits = limits

    def route(self, model: str) -> Route:
        """The request's route; an unknown model is a 404 with the names that are close."""
        try:
            return self.catalog.route(model)
        except InputError as error:
            raise APIError(404, str(error), param="model", code="model_not_found") from None

    # ---- chat -------------------------------------------------------------------------------

    async def chat(self, body: ChatRequest, request_id: str, watch: Watch) -> ChatResponse:
        """A whole chat completion."""
        route = self.route(body.model)
        if route.raw:
            job, max_new = self._chat_job(body, route)
            generation: Generation = await watch(self.batcher.submit(job))
            text, finish = generation.text, self._finish(generation, max_new)
            usage = Usage.of(len(job.payload.tokens), generation.completion_tokens)
        else:
            output: Output = await watch(self.batcher.submit(self._rung_job(route, _user_text(body), request_id)))
            text, finish, usage = output.text, "stop", Usage.of(output.prompt_tokens, output.completion_tokens)
        choice = ChatChoice(message=AssistantMessage(content=text), finish_reason=finish)
        return ChatResponse(id=request_id, model=body.model, choices=[choice], usage=usage)

    def chat_stream(self, body: ChatRequest, request_id: str) -> AsyncIterator[str]:
        """Server-sent events of a chat completion: tokens as they are generated, then `[DONE]`.

        Checked before the first byte is sent, so a bad request is still a plain 4xx.
        """
        route = self.route(body.model)
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        if route.raw:
            job, max_new = self._chat_job(body, route)
            return self._stream_chat(body, request_id, job, max_new, include_usage)
        return self._stream_chat(
            body, request_id, self._rung_job(route, _user_text(body), request_id), 0, include_usage
        )

    async def _stream_chat(
        self, body: ChatRequest, request_id: str, job: Job, max_new: int, include_usage: bool
    ) -> AsyncIterator[str]:
        chunk = chat_chunker(body.model, request_id)
        yield chunk(Delta(role="assistant", content=""))
        async for piece in job_pieces(self.batcher, [job], self._decode, body.stops()):
            if piece.text:
                yield chunk(Delta(content=piece.text))
            if piece.result is not None:
                finish, usage = self._ending(piece.result, job, max_new)
                yield chunk(Delta(), finish)
                if include_usage:
                    yield chunk(None, usage=usage)
        yield DONE

    def completion_stream(self, body: CompletionRequest, request_id: str) -> AsyncIterator[str]:
        """Server-sent events of a text completion: each prompt's text as it is generated (by its index), then
        `[DONE]`. Checked before the first byte is sent, so a bad request is still a plain 4xx."""
        route = self.route(body.model)
        if body.logprobs is not None or body.echo:
            raise APIError(400, "logprobs, echo: not streamed; ask without stream", param="stream")
        prompts = body.prompts()
        if route.raw:
            max_new = self._max_new(body.max_tokens)
            jobs = [self._generate_job(route, self._completion_tokens(p), max_new, body.stops()) for p in prompts]
        else:
            max_new = 0
            jobs = [self._rung_job(route, prompt, f"{request_id}-{i}") for i, prompt in enumerate(prompts)]
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return self._stream_completion(body, request_id, jobs, max_new, include_usage)

    async def _stream_completion(
        self, body: CompletionRequest, request_id: str, jobs: list[Job], max_new: int, include_usage: bool
    ) -> AsyncIterator[str]:
        chunk = completion_chunker(body.model, request_id)
        prompt_tokens = completion_tokens = 0
        async for piece in job_pieces(self.batcher, jobs, self._decode, body.stops()):
            if piece.text:
                yield chunk(piece.index, piece.text)
            if piece.result is not None:
                finish, usage = self._ending(piece.result, jobs[piece.index], max_new)
                prompt_tokens += usage.prompt_tokens
                completion_tokens += usage.completion_tokens
                yield chunk(piece.index, "", finish)
        if include_usage:
            yield chunk(None, usage=Usage.of(prompt_tokens, completion_tokens))
        yield DONE

    def _decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))

    def _ending(self, result: Generation | Output, job: Job, max_new: int) -> tuple[FinishReason, Usage]:
        """How a streamed job ended, and what it used: a generation's tokens, or a rung's answer."""
        if isinstance(result, Generation):
            return self._finish(result, max_new), Usage.of(len(job.payload.tokens), result.completion_tokens)
        return "stop", Usage.of(result.prompt_tokens, result.completion_tokens)

    def _chat_job(self, body: ChatRequest, route: Route) -> tuple[Job, int]:
        max_new = self._max_new(body.limit(min(self.limits.default_max_tokens, self.limits.max_tokens)))
        if not self.task_prompts.format.chat:
            raise APIError(400, "messages: this model has no chat template; use /v1/completions", param="messages")
        tokens = self.task_prompts.encode_messages(body.turns())
        self._fits(len(tokens), "messages")
        return self._generate_job(route, tokens, max_new, body.stops()), max_new

    # ---- text completions -------------------------------------------------------------------

    async def completion(self, body: CompletionRequest, request_id: str, watch: Watch) -> CompletionResponse:
        """A text completion per prompt; with `echo` and `logprobs`, the prompt's own token log-probabilities."""
        route = self.route(body.model)
        if not route.raw and (body.logprobs is not None or body.echo):
            use = " or ".join(f"'{name}'" for name in self._raw_names(route))
            raise APIError(400, f"logprobs, echo: need the model's text as sent; use {use}", param="logprobs")
        prompts = body.prompts()
        # everything checked before any work starts; then every prompt's work at once, so they share batches
        if route.raw:
            max_new = self._max_new(body.max_tokens) if body.max_tokens > 0 else 0
            encoded = [self._completion_tokens(prompt) for prompt in prompts]
            work = [
                self._complete_raw(body, route, index, prompt, tokens, max_new)
                for index, (prompt, tokens) in enumerate(zip(prompts, encoded, strict=True))
            ]
        else:
            jobs = [self._rung_job(route, prompt, f"{request_id}-{i}") for i, prompt in enumerate(prompts)]
            work = [self._complete_rung(i, job) for i, job in enumerate(jobs)]
        answers: list[tuple[CompletionChoice, tuple[int, int]]] = await watch(asyncio.gather(*work))
        usage = Usage.of(sum(used[0] for _, used in answers), sum(used[1] for _, used in answers))
        return CompletionResponse(id=request_id, model=body.model, choices=[c for c, _ in answers], usage=usage)

    def _raw_names(self, route: Route) -> list[str]:
        """The served names that send text as it is to a rung route's weights: its adapter's raw name, the base."""
        wanted = [route.adapter.name + RAW] if route.adapter is not None else []  # a prompting rung runs on the base
        return [name for name in (*wanted, BASE) if name in self.catalog.model_ids()]

    def _prompt_spans(self, prompt: str) -> list[tuple[str, int]]:
        """Each prompt token's text and its offset in the prompt, from the tokenizer's own offsets."""
        encoded = self.tokenizer(prompt, add_special_tokens=True, return_offsets_mapping=True)
        return [(prompt[begin:end], begin) for begin, end in encoded["offset_mapping"]]

    def _completion_tokens(self, prompt: str) -> list[int]:
        tokens = [int(t) for t in self.tokenizer(prompt, add_special_tokens=True)["input_ids"]]
        self._fits(len(tokens), "prompt")
        return tokens

    async def _complete_rung(self, index: int, job: Job) -> tuple[CompletionChoice, tuple[int, int]]:
        output: Output = await self.batcher.submit(job)
        choice = CompletionChoice(index=index, text=output.text, finish_reason="stop")
        return choice, (output.prompt_tokens, output.completion_tokens)

    async def _complete_raw(
        self, body: CompletionRequest, route: Route, index: int, prompt: str, tokens: list[int], max_new: int
    ) -> tuple[CompletionChoice, tuple[int, int]]:
        generated: tuple[int, ...] = ()
        text = ""
        finish: FinishReason = "length"
        if max_new > 0:
            generation: Generation = await self.batcher.submit(self._generate_job(route, tokens, max_new, body.stops()))
            generated, text, finish = generation.tokens, generation.text, self._finish(generation, max_new)
        logprobs = None
        if body.logprobs is not None:
            sequence = (*tokens, *generated)
            job = Job(
                Logprobs(group_of(route.adapter), body.logprobs),
                TokensWork(sequence, route.adapter),
                cost=len(sequence),
            )
            scored: list[TokenLogprob] = await self.batcher.submit(job)
            start = 0 if body.echo else len(tokens)
            spans = self._prompt_spans(prompt) if body.echo else []
            logprobs = self._logprobs(sequence, scored, start, len(prompt), spans)
        choice = CompletionChoice(
            index=index, text=(prompt if body.echo else "") + text, logprobs=logprobs, finish_reason=finish
        )
        return choice, (len(tokens), len(generated))

    def _logprobs(
        self,
        sequence: Sequence[int],
        scored: Sequence[TokenLogprob],
        start: int,
        prompt_chars: int,
        spans: Sequence[tuple[str, int]],
    ) -> CompletionLogprobs:
        """OpenAI's parallel lists for the tokens from `start` on; the first token of a sequence has no logprob.

        An echoed prompt token's piece and offset are its span in the prompt as sent (a chat template's
        special tokens are text there; a BOS the tokenizer added takes no room); generated tokens follow.
        """
        pieces = [piece for piece, _ in spans]
        offsets = [offset for _, offset in spans]
        at = prompt_chars
        for token in sequence[start + len(spans) :]:
            piece = self.tokenizer.decode([token], skip_special_tokens=True)
            pieces.append(piece)
            offsets.append(at)
            at += len(piece)
        token_logprobs: list[float | None] = []
        top: list[dict[str, float] | None] = []
        for position in range(start, len(sequence)):
            if position == 0:
                token_logprobs.append(None)
                top.append(None)
                continue
            entry = scored[position - 1]
            token_logprobs.append(entry.logprob)
            top.append({self.tokenizer.decode([t]): value for t, value in entry.top})
        return CompletionLogprobs(tokens=pieces, token_logprobs=token_logprobs, top_logprobs=top, text_offset=offsets)

    # ---- jobs -------------------------------------------------------------------------------

    def _generate_job(self, route: Route, tokens: list[int], max_new: int, stop: tuple[str, ...]) -> Job:
        return Job(
            Generate(group_of(route.adapter), max_new, stop),
            TokensWork(tuple(tokens), route.adapter),
            len(tokens) + max_new,
        )

    def _rung_job(self, route: Route, text: str, request_id: str) -> Job:
        """The job that answers `text` in the route's rung prompt, as the assessment answers a test example."""
        assert route.rung is not None
        example = Example(id=request_id, input=text, target="")
        adapter = route.adapter
        # a rung whose model declares it answers in the tuned prompt joins the mixed-adapter batches on the base
        if adapter is not None and adapter.group == "shared" and adapter.answering is not None:
            mode, max_new_tokens = adapter.answering.mode, adapter.answering.max_new_tokens
            prompt = self.tuned_prompts.split(example)
            size = self._fits(len(prompt[0]) + len(prompt[1]), "messages")
            answer_tokens = (len(self.tuned_prompts.choice_tokens(label)) for label in self.labels)
            new = max_new_tokens if mode == "generate" else max(answer_tokens, default=0)
            return Job(Answer(mode, max_new_tokens, group_of(adapter)), PromptWork(prompt, adapter), size + new)
        size = self._fits(len(self.tokenizer(text, add_special_tokens=False)["input_ids"]), "messages")
        return Job(RungAnswer(route.rung.name), ExampleWork(example, adapter), size + _RUNG_COST)

    def _max_new(self, wanted: int) -> int:
        if wanted > self.limits.max_tokens:
            raise APIError(400, f"max_tokens: at most {self.limits.max_tokens} on this server", param="max_tokens")
        return wanted

    def _fits(self, count: int, param: str) -> int:
        """The prompt's token count, when it is within this server's limit."""
        if count > self.limits.max_prompt_tokens:
            limit = self.limits.max_prompt_tokens
            raise APIError(400, f"{param}: {count} tokens, more than this server's {limit}", param=param)
        return count

    def _finish(self, generation: Generation, max_new: int) -> FinishReason:
        """`length` when it stopped only because it reached max_tokens."""
        ended = bool(generation.tokens) and generation.tokens[-1] in self.end_ids
        if ended or generation.completion_tokens < max_new:
            return "stop"
        full = self.tokenizer.decode(list(generation.tokens), skip_special_tokens=True)
        return "stop" if len(generation.text) < len(full) else "length"


def _user_text(body: ChatRequest) -> str:
    text = body.last_user_text()
    if text is None:
        raise APIError(
            400, "messages: a rung's prompt wraps the last user message, and there is none", param="messages"
        )
    return text
