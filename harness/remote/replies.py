"""The parts of OpenAI's reply shapes we read, checked on arrival (a wrong shape is retried, then an error)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Usage(_Lenient):
    """Tokens as the endpoint counted (and bills) them."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class EchoLogprobs(_Lenient):
    """Legacy completions logprobs: parallel lists; the first prompt token has no logprob."""

    tokens: list[str]
    token_logprobs: list[float | None]
    text_offset: list[int]


class CompletionChoice(_Lenient):
    """One prompt's completion."""

    index: int = 0
    text: str = ""
    logprobs: EchoLogprobs | None = None


class CompletionReply(_Lenient):
    """`POST /completions`."""

    choices: list[CompletionChoice] = Field(min_length=1)
    usage: Usage | None = None


class TopLogprob(_Lenient):
    """One candidate token and its logprob."""

    token: str
    logprob: float


class TokenLogprob(_Lenient):
    """A generated token with its most likely alternatives."""

    token: str
    logprob: float
    top_logprobs: list[TopLogprob] = []


class ChatLogprobs(_Lenient):
    """Logprobs of a chat answer, token by token."""

    content: list[TokenLogprob] | None = None


class ChatMessage(_Lenient):
    """The assistant's answer."""

    content: str | None = None


class ChatChoice(_Lenient):
    """One answer of a chat completion."""

    message: ChatMessage
    logprobs: ChatLogprobs | None = None


class ChatReply(_Lenient):
    """`POST /chat/completions`."""

    choices: list[ChatChoice] = Field(min_length=1)
    usage: Usage | None = None
