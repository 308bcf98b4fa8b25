"""What an audit reports: findings with a severity, a count and the rows they are about; and its settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from harness.types import Example

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One problem in the data: `count` rows (or classes) are affected; `row_ids` lists the first few."""

    code: str
    severity: Severity
    count: int
    message: str
    row_ids: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The finding as plain JSON data."""
        return {
            "code": self.code,
            "severity": self.severity,
            "count": self.count,
            "message": self.message,
            "row_ids": list(self.row_ids),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds of the audit; a length check runs only when its limit is known."""

    near_threshold: float = 0.95  # cosine of all-MiniLM-L6-v2 embeddings at or above which two inputs are "near"
    max_listed: int = 10  # row ids and examples kept per finding; `count` is always the full number
    min_per_class: int = 8  # fewer train examples than this for a class: too few to tune on
    max_imbalance: float = 10.0  # largest / smallest train class at or above which balance is a warning
    train_max_length: int | None = None  # tokens a training row may have (longer rows are dropped by training)
    context_length: int | None = None  # the model's context window in tokens
    prompt_overhead_tokens: int = 0  # tokens the instruction and template add to every input
    search_batch: int = 2048  # query rows per FAISS call, which bounds the memory of one search

    def __post_init__(self) -> None:
        if not 0 < self.near_threshold <= 1:
            raise ValueError(f"near_threshold must be in (0, 1], got {self.near_threshold}")
        if self.max_listed < 1 or self.min_per_class < 1 or self.search_batch < 1:
            raise ValueError("max_listed, min_per_class and search_batch must be at least 1")


class TextEmbedder(Protocol):
    """What the audit needs of an embedder: unit-length float32 rows, so inner product is cosine."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dimension) float32, each row of unit length."""


@dataclass(frozen=True)
class Row:
    """An example with the split it came from; `ref` names it in findings (`train:r12`)."""

    split: str
    example: Example

    @property
    def ref(self) -> str:
        """The row id qualified by its split: ids may repeat across split files."""
        return f"{self.split}:{self.example.id}"


def shorten(text: str, limit: int = 80) -> str:
    """A one-line preview of a text for a finding's detail."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def percent(share: float) -> str:
    """A share as a percentage that never rounds a few rows down to '0.0%'."""
    return f"{share:.1%}" if share == 0 or share >= 0.001 else f"{100 * share:.2g}%"


def listed(refs: Sequence[str], settings: AuditSettings) -> tuple[str, ...]:
    """The first `max_listed` row ids, without repeats, in the order given."""
    return tuple(dict.fromkeys(refs))[: settings.max_listed]
