"""Where a prompting rung's prompts are answered: the local engine, or a remote endpoint.

A prompting rung decides what to show the model (the example, demonstrations, passages); an
answerer decides where the model is. The rung is the same either way, so a remote zero_shot sends
the very conversation the local one encodes (DESIGN.md: "a remote endpoint is a place a rung runs").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from harness.inference.answering import Mode, answer
from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder
from harness.types import Example, Output


@dataclass(frozen=True)
class PromptParts:
    """What one prompt is made of: the example, demonstrations before it, passages with it."""

    example: Example
    demos: tuple[Example, ...] = ()
    passages: tuple[str, ...] = ()
    demos_shared: bool = False  # the demonstrations are the same for every example (one cached prefix)
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # copied into the output


class Answerer(Protocol):
    """Answers prompts in a mode; its fingerprint stands for the model behind it in every rung's key."""

    def fingerprint(self) -> str:
        """A hash of the model that answers (the local model's, or the endpoint's and its scoring mode)."""
        ...

    def prepare(self) -> None:
        """Get ready to answer (load the local model) before any request is timed."""
        ...

    def scoring(self, mode: Mode) -> str:
        """How answers in `mode` are read: a key of SCORING_MODES (harness/inference/scoring_modes.py)."""
        ...

    def answer(
        self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, max_new_tokens: int
    ) -> list[Output]:
        """One output per prompt, in order."""
        ...


class LocalAnswerer:
    """The local engine: prompts are encoded with the task's tokenizer and answered in batches."""

    def __init__(self, engine: Engine, prompts: PromptBuilder, model_fingerprint: str):
        self.engine = engine
        self.prompts = prompts
        self.model_fingerprint = model_fingerprint

    def fingerprint(self) -> str:
        """The local model's fingerprint, as every stored local result is keyed."""
        return self.model_fingerprint

    def prepare(self) -> None:
        """Load the model (an engine defers it until something must be computed) and warm it up."""
        self.engine.warm_up()

    def scoring(self, mode: Mode) -> str:
        """Exact label likelihoods when scoring, the greedy answer read when generating."""
        return "likelihood" if mode == "score" else "generate"

    def answer(
        self, parts: Sequence[PromptParts], labels: Sequence[str], mode: Mode, max_new_tokens: int
    ) -> list[Output]:
        """Encode every prompt (shared demonstrations as one cached prefix) and answer them."""
        encoded = [
            self.prompts.split(p.example, p.demos, demos_shared=p.demos_shared, passages=p.passages) for p in parts
        ]
        outputs = answer(self.engine, self.prompts, encoded, labels, mode, max_new_tokens)
        return [with_detail(o, p) for o, p in zip(outputs, parts, strict=True)]


def with_detail(output: Output, parts: PromptParts) -> Output:
    """The output with the prompt's own detail (the passages' sources, say) added."""
    return replace(output, detail={**output.detail, **parts.detail}) if parts.detail else output
