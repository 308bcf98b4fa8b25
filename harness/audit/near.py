"""Pairs of unit vectors at or above a cosine threshold, found with FAISS in batches (exact inner product)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from harness.retrieval.vector_index import build_faiss, search

# float32 inner products of identical unit vectors can land a hair under 1.0
_TOLERANCE = 1e-5


def similar_pairs(vectors: np.ndarray, threshold: float, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) of rows with cosine >= threshold: arrays i, j and cosine, each of one length.

    A range search returns all neighbours above the threshold, however many, where a top-k search
    would miss the members of a large cluster past the k-th.
    """
    n = len(vectors)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    index = build_faiss(np.ascontiguousarray(vectors, dtype=np.float32), "flat")
    firsts, seconds, scores = [], [], []
    for start in range(0, n, batch):
        queries = np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32)
        lims, found_scores, found_ids = index.range_search(queries, threshold - _TOLERANCE)
        owners = np.repeat(np.arange(start, start + len(queries)), np.diff(lims).astype(np.int64))
        keep = found_ids > owners  # each pair once, and never a row with itself
        firsts.append(owners[keep])
        seconds.append(found_ids[keep].astype(np.int64))
        scores.append(np.minimum(found_scores[keep], 1.0))
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(scores)


def nearest(queries: np.ndarray, base: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of its most similar base row and that cosine (-1 and -inf if no base)."""
    if len(base) == 0 or len(queries) == 0:
        return np.full(len(queries), -1, dtype=np.int64), np.full(len(queries), -np.inf, dtype=np.float32)
    index = build_faiss(np.ascontiguousarray(base, dtype=np.float32), "flat")
    best_ids, best_scores = [], []
    for start in range(0, len(queries), batch):
        scores, ids = search(index, queries[start : start + batch], 1)
        best_ids.append(ids[:, 0].astype(np.int64))
        best_scores.append(np.minimum(scores[:, 0], 1.0))
    return np.concatenate(best_ids), np.concatenate(best_scores)


def is_near(score: float, threshold: float) -> bool:
    """The threshold test with the same float tolerance the search used."""
    return score >= threshold - _TOLERANCE


def components(size: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Groups of items joined by pairs (union-find), sorted, in order of first member; singletons left out."""
    parent = list(range(size))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for first, second in pairs:
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for item in range(size):
        groups.setdefault(root(item), []).append(item)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
