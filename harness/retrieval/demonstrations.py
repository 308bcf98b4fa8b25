"""Choosing the k demonstrations a few-shot prompt shows: fixed, random or most similar."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from harness.data.hashing import content_hash
from harness.retrieval.vector_index import build_faiss, search
from harness.types import Example

Selection = Literal["fixed", "random", "similar"]


def example_text(example: Example) -> str:
    """The text that stands for an example's input (chat records: the user turns)."""
    if isinstance(example.input, str):
        return example.input
    return "\n".join(turn["content"] for turn in example.input if turn["role"] == "user")


class DemoSelector:
    """Demonstrations from a pool (the train split) for each example, reproducible from the seed."""

    def __init__(
        self,
        pool: Sequence[Example],
        k: int,
        selection: Selection,
        balanced: bool,
        seed: int,
        embedder: Callable[[], Any] | None = None,
    ):
        self.pool = list(pool)
        self.k = min(k, len(self.pool))
        self.selection = selection
        self.balanced = balanced
        self.seed = seed
        self._embedder = embedder
        self._index: Any = None
        self._fixed: list[Example] | None = None

    def choose(self, examples: Sequence[Example]) -> list[list[Example]]:
        """The demonstrations for each example, in prompt order."""
        if self.selection == "fixed":
            if self._fixed is None:
                self._fixed = self._sample(random.Random(self.seed))
            return [self._fixed for _ in examples]
        if self.selection == "random":
            return [self._sample(random.Random(content_hash(self.seed, e.id))) for e in examples]
        return self._similar(examples)

    def _sample(self, rng: random.Random) -> list[Example]:
        if not self.balanced:
            return rng.sample(self.pool, self.k)
        groups = _by_label(self.pool)
        for members in groups.values():
            rng.shuffle(members)
        labels = sorted(groups)
        rng.shuffle(labels)
        chosen: list[Example] = []
        while len(chosen) < self.k:  # one per label in turn, so every label is shown
            for label in labels:
                if groups[label] and len(chosen) < self.k:
                    chosen.append(groups[label].pop())
        return chosen

    def _similar(self, examples: Sequence[Example]) -> list[list[Example]]:
        if self._embedder is None:
            raise ValueError("similar selection needs an embedder")
        embedder = self._embedder()
        if self._index is None:
            self._index = build_faiss(embedder.embed([example_text(e) for e in self.pool]))
        queries = embedder.embed([example_text(e) for e in examples])
        if not self.balanced:
            _, ids = search(self._index, queries, self.k)
            return [[self.pool[i] for i in reversed(row) if i >= 0] for row in ids]  # most similar last
        return [self._balanced_nearest(query) for query in queries]

    def _balanced_nearest(self, query: np.ndarray) -> list[Example]:
        """The nearest ceil(k / labels) of each label, trimmed to k, most similar last."""
        _, ids = search(self._index, query[None, :], len(self.pool))
        per_label = math.ceil(self.k / len(_by_label(self.pool)))
        taken: dict[str, int] = defaultdict(int)
        chosen: list[int] = []
        for i in ids[0]:
            label = self.pool[i].target
            if taken[label] < per_label:
                taken[label] += 1
                chosen.append(int(i))
        return [self.pool[i] for i in reversed(chosen[: self.k])]


def _by_label(pool: Sequence[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in pool:
        groups[example.target].append(example)
    return groups
