"""The core records that flow through the harness (see DESIGN.md, "Core types")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]
"""One chat turn: {"role": ..., "content": ...}."""

ExampleInput = str | tuple[Message, ...]


@dataclass(frozen=True)
class Example:
    """One row of the user's data: text (or chat turns) in, the expected answer out."""

    id: str
    input: ExampleInput
    target: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Output:
    """What a rung produced for one example, with what it cost in tokens and time."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    timed: bool = False  # latency_s was measured per request by the predictor (a remote call), not by the runner


@dataclass(frozen=True)
class Score:
    """How one output was judged: a value in [0, 1] and the prediction the scorer read from it."""

    value: float
    correct: bool
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Record:
    """One example, what a rung answered, and how it scored."""

    example: Example
    output: Output
    score: Score
