"""Nearest-neighbour search with FAISS over unit vectors (inner product = cosine), and its disk cache."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock

from harness.data.atomic import staged_folder
from harness.pause_points import pause_point

IndexKind = Literal["flat", "ivf", "hnsw"]


@dataclass(frozen=True)
class Passage:
    """A retrievable piece of text; `source` is the document it came from (for gold matching)."""

    id: str
    text: str
    source: str


def build_faiss(vectors: np.ndarray, kind: IndexKind = "flat") -> Any:
    """Exact inner product by default; IVF or HNSW (approximate) for large corpora."""
    import faiss

    n, dimension = vectors.shape
    index: Any
    if kind == "flat" or n < 2:
        index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 64
    else:
        lists = max(1, min(int(math.sqrt(n)), n // 39 or 1))  # FAISS wants ~39 points per list
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(lists, 8)
    index.add(vectors)
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, row ids) of the k nearest rows for each query, best first; -1 pads short results."""
    k = max(1, min(k, int(index.ntotal)))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


@dataclass
class StoredIndex:
    """A FAISS index with the passages its rows stand for."""

    index: Any
    passages: list[Passage]

    def top(self, queries: np.ndarray, k: int) -> list[list[tuple[Passage, float]]]:
        """The k best passages for each query, with their cosine scores."""
        scores, ids = search(self.index, queries, k)
        return [
            [(self.passages[i], float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]


def cached_index(
    folder: Path, build: Callable[[], tuple[np.ndarray, Sequence[Passage]]], kind: IndexKind
) -> tuple[StoredIndex, bool]:
    """Load the index stored in `folder`, or build and store it (atomically, under a lock).

    Returns the index and whether it was built now. The folder name is the caller's content hash
    of corpus, embedder and settings, so a stored index is never stale.
    """
    import faiss

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / "index.faiss").is_file():
            passages = [Passage(**json.loads(line)) for line in (folder / "passages.jsonl").open(encoding="utf-8")]
            return StoredIndex(faiss.read_index(str(folder / "index.faiss")), passages), False
        vectors, built = build()
        passages = list(built)
        index = build_faiss(vectors, kind)
        with staged_folder(folder) as staging:
            faiss.write_index(index, str(staging / "index.faiss"))
            lines = (json.dumps(p.__dict__, ensure_ascii=False) + "\n" for p in passages)
            (staging / "passages.jsonl").write_text("".join(lines), encoding="utf-8")
        pause_point("index built")
        return StoredIndex(index, list(passages)), True
