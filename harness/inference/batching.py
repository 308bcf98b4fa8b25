"""Grouping requests into batches that carry little padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def token_budget_batches(
    lengths: Sequence[int], max_tokens: int, max_size: int, *, slack: float = 1.0, fill: int = 0
) -> list[list[int]]:
    """Indices grouped longest first, each batch's padded size (rows x longest) within budget.

    Sorting by length keeps the padding small; longest first makes the first batch the largest,
    so an out-of-memory shows at once rather than at the end of a run. With `slack` below 1, a
    batch that already holds `fill` real tokens (enough to keep the matrix units busy) ends before
    a row shorter than (1 - slack) x its longest: a long tail of short rows would otherwise be
    padded to the longest one.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for index in order:
        longest = lengths[current[0]] if current else lengths[index]
        full = len(current) >= max_size or (len(current) + 1) * longest > max_tokens
        loose = real >= fill and lengths[index] < (1 - slack) * longest
        if current and (full or loose):
            batches.append(current)
            current, real = [], 0
        current.append(index)
        real += lengths[index]
    if current:
        batches.append(current)
    return batches


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
