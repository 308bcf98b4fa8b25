"""Retrieval: FAISS against a brute-force cosine oracle, the corpus loader, and the disk cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import InputError
from harness.retrieval.corpus import chunk, corpus_hash, load_corpus
from harness.retrieval.vector_index import Passage, build_faiss, cached_index, search


def unit_rows(n: int, dimension: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def brute_force(corpus: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :k]


def test_exact_search_equals_brute_force_cosine() -> None:
    corpus, queries = unit_rows(500, 32, 0), unit_rows(40, 32, 1)
    scores, ids = search(build_faiss(corpus, "flat"), queries, 5)
    assert (ids == brute_force(corpus, queries, 5)).all()
    assert np.allclose(scores, np.take_along_axis(queries @ corpus.T, ids, axis=1), atol=1e-5)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_find_most_true_neighbours(kind: str) -> None:
    corpus, queries = unit_rows(2000, 16, 2), unit_rows(50, 16, 3)
    _, ids = search(build_faiss(corpus, kind), queries, 10)  # type: ignore[arg-type]
    truth = brute_force(corpus, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)])
    assert recall > 0.6


def test_k_larger_than_the_corpus_returns_everything() -> None:
    corpus = unit_rows(3, 8, 4)
    _, ids = search(build_faiss(corpus), corpus[:1], 10)
    assert sorted(ids[0].tolist()) == [0, 1, 2]


def test_chunks_overlap_and_cover_the_document() -> None:
    words = [f"w{i}" for i in range(24)]
    pieces = chunk("doc", " ".join(words), chunk_words=10, overlap_words=3)
    assert [p.id for p in pieces] == ["doc#0", "doc#1", "doc#2"]  # 0-9, 7-16, 14-23
    longer = chunk("doc", " ".join([*words, "w24"]), chunk_words=10, overlap_words=3)
    assert len(longer) == 4 and longer[-1].text.split()[-1] == "w24"
    assert pieces[0].text.split()[-3:] == pieces[1].text.split()[:3]
    assert set(" ".join(p.text for p in pieces).split()) == set(words)
    assert chunk("short", "just a few words", 10, 3)[0].text == "just a few words"


def test_folder_and_jsonl_corpora(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("Refunds take five days.", encoding="utf-8")
    (folder / "sub" / "b.txt").write_text("Passwords reset by email.", encoding="utf-8")
    (folder / "ignored.pdf").write_bytes(b"%PDF")
    assert [p.source for p in load_corpus(folder, 50, 5)] == ["a.md", "sub/b.txt"]
    lines = [{"context_id": "S_0", "title": "Super Bowl", "context": "Denver won."}, {"id": "x", "text": "Plain."}]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in lines), encoding="utf-8")
    passages = load_corpus(jsonl, 50, 5)
    assert [(p.source, p.text) for p in passages] == [("S_0", "Super Bowl: Denver won."), ("x", "Plain.")]
    before = corpus_hash(folder)
    (folder / "a.md").write_text("Refunds take ten days.", encoding="utf-8")
    assert corpus_hash(folder) != before


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: None, "corpus not found"),
        (lambda p: p.mkdir(), "no .txt or .md files"),
        (lambda p: (p.mkdir(), (p / "e.txt").write_text("   ")), "the corpus is empty"),
        (lambda p: (p.mkdir(), (p / "e.txt").write_bytes(b"caf\xe9")), "not UTF-8"),
    ],
)
def test_bad_corpora_are_one_clear_error(tmp_path: Path, setup: object, expected: str) -> None:
    path = tmp_path / "corpus"
    setup(path)  # type: ignore[operator]
    with pytest.raises(InputError, match=expected):
        load_corpus(path, 50, 5)


def test_the_index_is_built_once_and_loaded_after(tmp_path: Path) -> None:
    calls: list[int] = []
    passages = [Passage(str(i), f"text {i}", str(i)) for i in range(20)]

    def build() -> tuple[np.ndarray, list[Passage]]:
        calls.append(1)
        return unit_rows(20, 8, 5), passages

    first, built = cached_index(tmp_path / "key", build, "flat")
    second, built_again = cached_index(tmp_path / "key", build, "flat")
    assert (built, built_again) == (True, False) and len(calls) == 1
    query = unit_rows(1, 8, 6)
    assert [p.id for p, _ in first.top(query, 3)[0]] == [p.id for p, _ in second.top(query, 3)[0]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
