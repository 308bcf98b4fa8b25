"""An answerer that tells an observer every prompt it sends, so `advisor prompt` can show what a rung sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.inference.answerer import Answerer, PromptParts
from harness.inference.answering import Mode
from harness.inference.wrapped import WrappedAnswerer
from harness.types import Output


@dataclass(frozen=True)
class Sent:
    """One prompt as it went to the model, how it was to be answered, and the model's raw output."""

    parts: PromptParts
    labels: tuple[str, ...]
    mode: Mode
    max_new_tokens: int
    output: Output


PromptObserver = Callable[[Sent], None]
"""Who hears each prompt a rung sends (content-free calibration prompts included)."""


class ObservedAnswerer(WrappedAnswerer):
    """Answers through another answerer, then tells the observer each prompt with its answer."""

    def __init__(self, inner: Answerer, observer: PromptObserver):
        super().__init__(inner)
        self.observer = observer

    def answer(
        self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, max_new_tokens: int
    ) -> list[Output]:
        """The inner answerer's outputs, unchanged."""
        outputs = self.inner.answer(parts, labels, mode, max_new_tokens)
        for prompt, output in zip(parts, outputs, strict=True):
            self.observer(Sent(prompt, tuple(labels), mode, max_new_tokens, output))
        return outputs
