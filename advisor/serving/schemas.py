"""OpenAI's request and response shapes, as far as this server implements them.

Requests forbid unknown fields, so a misspelt option is a 400 naming it rather than silently ignored.
Options that OpenAI clients commonly send and that cannot change a greedy answer (temperature, top_p,
seed, user, zero penalties) are accepted; the answer is always the greedy one, as in the assessment.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1)
    temperature: float | None = Field(default=None, ge=0, le=2)  # the answer is greedy whatever it says
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    user: str | None = None
    presence_penalty: float = Field(default=0.0, ge=0, le=0)
    frequency_penalty: float = Field(default=0.0, ge=0, le=0)
    logit_bias: dict[str, float] | None = None

    def stops(self) -> tuple[str, ...]:
        """The stop strings, as a tuple (OpenAI allows one string or up to four)."""
        values = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(v for v in values if v)

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop strings")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _no_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value:
            raise ValueError("not supported: answers are the model's own greedy choice")
        return value


class TextPart(BaseModel):
    """One part of a message's content; only text parts are understood."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        """The content as one string."""
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    """`stream_options`: whether the last chunk carries the usage."""

    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ChatRequest(_Request):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream_options: StreamOptions | None = None

    def limit(self, default: int) -> int:
        """The most tokens to generate: max_completion_tokens, else max_tokens, else the server's default."""
        return self.max_completion_tokens or self.max_tokens or default

    def turns(self) -> list[dict[str, str]]:
        """The messages as the chat template takes them (developer is OpenAI's newer name for system)."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]

    def last_user_text(self) -> str | None:
        """The last user message's text (what a rung's prompt wraps), or None when there is none."""
        users = [m for m in self.messages if m.role == "user"]
        return users[-1].text() if users else None


class CompletionRequest(_Request):
    """`POST /v1/completions`: `logprobs` and `echo` let a client score label choices."""

    prompt: str | list[str]
    max_tokens: int = Field(default=16, ge=0)
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool = False
    best_of: int = Field(default=1, ge=1, le=1)
    suffix: None = None
    stream_options: StreamOptions | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> CompletionRequest:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts or any(not p for p in prompts):
            raise ValueError("prompt: expected a non-empty string or a list of them")
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens: 0 generates nothing; use echo with logprobs to score a prompt")
        return self

    def prompts(self) -> list[str]:
        """The prompts, one choice each."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


# ---- responses --------------------------------------------------------------------------------


class Usage(BaseModel):
    """Tokens of the prompt and the completion, counted with the model's own tokenizer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt: int, completion: int) -> Usage:
        """Usage with the total filled in."""
        return cls(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


FinishReason = Literal["stop", "length"]


class AssistantMessage(BaseModel):
    """The answer of a chat completion."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """One answer of a chat completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatResponse(BaseModel):
    """A whole chat completion."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage


class Delta(BaseModel):
    """A streamed piece of the answer."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """One answer's piece in a streamed chunk."""

    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(BaseModel):
    """Per-token log-probabilities, OpenAI's legacy shape: parallel lists, `None` for the first prompt token."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    """One answer of a text completion."""

    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason


class CompletionChunkChoice(BaseModel):
    """One prompt's new text in a streamed text completion."""

    index: int
    text: str
    logprobs: None = None
    finish_reason: FinishReason | None = None


class CompletionChunk(BaseModel):
    """One server-sent event of a streamed text completion."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None


class CompletionResponse(BaseModel):
    """A whole text completion."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelCard(BaseModel):
    """One entry of `GET /v1/models`."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "ladder"


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def dump(model: BaseModel) -> dict[str, Any]:
    """A response model as JSON-ready data."""
    return model.model_dump(mode="json")
