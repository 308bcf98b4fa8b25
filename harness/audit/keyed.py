"""Rows grouped by their normalised input, per split: the common ground of the duplicate and leakage checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.audit.findings import Row, TextEmbedder
from harness.audit.text import embedding_text, input_key, is_blank_input
from harness.types import Example

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class KeyedSplit:
    """One split's rows, and its distinct input keys in order of first appearance with the rows of each."""

    name: str
    rows: tuple[Row, ...]
    groups: dict[str, list[Row]]  # key -> rows; blank inputs are left out (they have their own finding)

    @property
    def keys(self) -> list[str]:
        """Distinct keys, in order of first appearance."""
        return list(self.groups)


def keyed(name: str, examples: Sequence[Example]) -> KeyedSplit:
    """Group a split's examples by input key."""
    rows = tuple(Row(name, example) for example in examples)
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if not is_blank_input(row.example):
            groups.setdefault(input_key(row.example), []).append(row)
    return KeyedSplit(name, rows, groups)


@dataclass(frozen=True)
class KeyVectors:
    """One embedding per distinct input key across all splits, embedded once."""

    position: dict[str, int]
    vectors: np.ndarray

    def of(self, keys: Sequence[str]) -> np.ndarray:
        """The vectors of these keys, in their order."""
        if not keys:
            return np.zeros((0, self.vectors.shape[1] if self.vectors.ndim == 2 else 0), dtype=np.float32)
        return self.vectors[[self.position[key] for key in keys]]


def embed_keys(splits: Sequence[KeyedSplit], embedder: TextEmbedder) -> KeyVectors:
    """Embed the first row's text of every distinct key (duplicates cost nothing twice)."""
    texts: dict[str, str] = {}
    for split in splits:
        for key, rows in split.groups.items():
            texts.setdefault(key, embedding_text(rows[0].example))
    vectors = embedder.embed(list(texts.values())) if texts else np.zeros((0, 0), dtype=np.float32)
    return KeyVectors({key: i for i, key in enumerate(texts)}, np.asarray(vectors, dtype=np.float32))
