"""Answers already given in this process, by prompt, so alternatives that ask the same prompts ask once.

A rung choosing between `calibrate: off` and `on` on the validation split asks the very same prompts
twice (calibration only rescales their label scores); with one memo shared by the alternatives, the
second asks the model only for its content-free prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.data.hashing import content_hash
from harness.inference.answerer import Answerer, PromptParts
from harness.inference.answering import Mode
from harness.inference.content_free import context_key
from harness.inference.wrapped import WrappedAnswerer
from harness.types import Output


class AnswerMemo:
    """Outputs by the content of the prompt that produced them (for one answerer, over one choice)."""

    def __init__(self) -> None:
        self.outputs: dict[str, Output] = {}


def prompt_key(parts: PromptParts, labels: Sequence[str], mode: Mode, max_new_tokens: int) -> str:
    """Everything that decides an answer to a prompt, besides the model."""
    e = parts.example
    budget = max_new_tokens if mode == "generate" else 0
    return content_hash(e.id, e.input, context_key(parts), list(labels), mode, budget)


class MemoAnswerer(WrappedAnswerer):
    """Answers through another answerer, asking it only for prompts the memo has not seen."""

    def __init__(self, inner: Answerer, memo: AnswerMemo):
        super().__init__(inner)
        self.memo = memo

    def answer(
        self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, max_new_tokens: int
    ) -> list[Output]:
        """Remembered outputs, and the inner answerer's for the rest (asked in one batch)."""
        keys = [prompt_key(p, labels, mode, max_new_tokens) for p in parts]
        todo = {key: p for key, p in zip(keys, parts, strict=True) if key not in self.memo.outputs}
        if todo:
            answered = self.inner.answer(list(todo.values()), labels, mode, max_new_tokens)
            self.memo.outputs.update(zip(todo, answered, strict=True))
        return [self.memo.outputs[key] for key in keys]
