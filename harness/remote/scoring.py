"""The three ways an endpoint can answer a labelled task, and generation for the others.

- `echo`: /completions with `echo` and `logprobs` returns the prompt's own token logprobs, so each
  label's exact log-likelihood after the prompt is read as locally (one request, every label a prompt).
- `logprobs`: /chat/completions with `top_logprobs` gives the first answer token's likeliest
  candidates; a label scores the probability of the candidates it starts with. Labels that share a
  first token are told apart by the answer the model went on to write.
- `generate`: the model writes its answer and the scorer reads a label from it; an answer naming no
  label counts wrong and is counted (`no_label_outputs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.remote.replies import ChatReply, CompletionReply
from harness.types import Message, Output

TOP_LOGPROBS = 20  # OpenAI's maximum; vLLM's default maximum too


@dataclass(frozen=True)
class Request:
    """One HTTP request of a rung: where it goes and its JSON body."""

    path: str
    body: dict[str, Any]


def echo_request(model: str, prompt: str, choices: Sequence[str]) -> Request:
    """Every label after the prompt, as one prompt each, echoed with their logprobs and nothing generated."""
    return Request(
        "/completions",
        {"model": model, "prompt": [prompt + c for c in choices], "max_tokens": 0, "echo": True, "logprobs": 0},
    )


def chat_request(model: str, messages: Sequence[Message], max_tokens: int, logprobs: bool) -> Request:
    """The conversation, answered greedily; with the first tokens' top candidates when `logprobs`."""
    body: dict[str, Any] = {"model": model, "messages": list(messages), "max_tokens": max_tokens, "temperature": 0}
    if logprobs:
        body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
    return Request("/chat/completions", body)


def read_echo(body: dict[str, Any], prompt: str, labels: Sequence[str]) -> Output:
    """The likeliest label by the summed logprobs of its tokens after the prompt."""
    reply = CompletionReply.model_validate(body)
    by_index = sorted(reply.choices, key=lambda c: c.index)
    if len(by_index) != len(labels) or any(c.logprobs is None for c in by_index):
        raise ValueError(f"expected {len(labels)} echoed choices with logprobs, got {len(by_index)}")
    totals: list[float] = []
    label_tokens: list[int] = []
    prompt_tokens = 0
    for choice in by_index:
        assert choice.logprobs is not None
        after = [i for i, offset in enumerate(choice.logprobs.text_offset) if offset >= len(prompt)]
        values = [choice.logprobs.token_logprobs[i] for i in after]
        if not after or any(v is None for v in values):
            raise ValueError("an echoed label has no token logprobs after the prompt")
        totals.append(sum(v for v in values if v is not None))
        label_tokens.append(len(after))
        prompt_tokens = after[0]
    best = max(range(len(labels)), key=totals.__getitem__)
    billed = reply.usage.prompt_tokens + reply.usage.completion_tokens if reply.usage else None
    return Output(
        text=labels[best],
        prompt_tokens=prompt_tokens,
        completion_tokens=label_tokens[best],
        latency_s=0.0,
        detail={
            "logprobs": {label: round(total, 4) for label, total in zip(labels, totals, strict=True)},
            "billed_tokens": billed,
        },
        timed=True,
    )


def read_chat(body: dict[str, Any], labels: Sequence[str], use_logprobs: bool) -> Output:
    """The answer's text (generate), or the label its first token's candidates favour (logprobs)."""
    reply = ChatReply.model_validate(body)
    choice = reply.choices[0]
    text = (choice.message.content or "").strip()
    usage = reply.usage
    detail: dict[str, Any] = {} if usage else {"usage": "not reported by the endpoint"}
    if use_logprobs and labels:
        first = choice.logprobs.content[0] if choice.logprobs and choice.logprobs.content else None
        if first is None:
            raise ValueError("asked for logprobs, the answer has none")
        candidates = {t.token: t.logprob for t in first.top_logprobs} or {first.token: first.logprob}
        scores = label_scores(candidates, labels)
        detail["logprobs"] = {label: None if s is None else round(s, 4) for label, s in scores.items()}
        chosen = choose_label(scores, text, labels)
        if chosen is None:
            detail["first_token_names_no_label"] = True
        else:
            text = chosen
    return Output(
        text=text,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        latency_s=0.0,
        detail=detail,
        timed=True,
    )


def label_scores(candidates: dict[str, float], labels: Sequence[str]) -> dict[str, float | None]:
    """Each label's log-probability mass among the first-token candidates it begins with (None: none)."""
    scores: dict[str, float | None] = {}
    for label in labels:
        wanted = label.strip().lower()
        matching = [
            lp for token, lp in candidates.items() if token.strip() and wanted.startswith(token.strip().lower())
        ]
        scores[label] = _logsumexp(matching) if matching else None
    return scores


def choose_label(scores: dict[str, float | None], text: str, labels: Sequence[str]) -> str | None:
    """The best-scored label; among labels sharing that score, the one the written answer names."""
    known = {label: s for label, s in scores.items() if s is not None}
    if not known:
        return None
    top = max(known.values())
    tied = [label for label in labels if known.get(label) is not None and math.isclose(known[label], top)]
    written = text.strip().lower()
    named = [label for label in tied if written.startswith(label.strip().lower())]
    return max(named, key=len) if named else tied[0]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
