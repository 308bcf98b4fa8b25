"""The knowledge corpus for retrieval: a folder of .txt/.md files or a JSONL of passages, chunked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.data.hashing import content_hash, file_sha256
from harness.data.reading import json_line_records
from harness.errors import InputError
from harness.retrieval.vector_index import Passage

TEXT_SUFFIXES = (".txt", ".md")


def load_corpus(path: Path, chunk_words: int, overlap_words: int) -> list[Passage]:
    """Every document cut into chunks of `chunk_words` words overlapping by `overlap_words`."""
    return [p for doc_id, text in corpus_documents(path) for p in chunk(doc_id, text, chunk_words, overlap_words)]


def corpus_documents(path: Path) -> list[tuple[str, str]]:
    """Every document as (id, text); a missing, malformed or empty corpus is one line (what load_corpus refuses)."""
    if not path.exists():
        raise InputError(f"{path}: corpus not found; expected a folder of .txt/.md files or a .jsonl of passages")
    documents = _documents(path)
    if not any(text.split() for _, text in documents):  # a document with words is at least one chunk
        raise InputError(f"{path}: the corpus is empty; expected at least one non-empty document")
    return documents


def corpus_hash(path: Path) -> str:
    """A hash of the corpus content (file names and bytes)."""
    files = sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES) if path.is_dir() else [path]
    return content_hash([(str(f.relative_to(path) if path.is_dir() else f.name), file_sha256(f)) for f in files])


def chunk(doc_id: str, text: str, chunk_words: int, overlap_words: int) -> list[Passage]:
    """Overlapping word windows of one document; a short document is one chunk."""
    words = text.split()
    if not words:
        return []
    step = max(1, chunk_words - overlap_words)
    starts = range(0, max(1, len(words) - overlap_words), step) if len(words) > chunk_words else [0]
    return [
        Passage(id=f"{doc_id}#{n}", text=" ".join(words[start : start + chunk_words]), source=doc_id)
        for n, start in enumerate(starts)
    ]


def _documents(path: Path) -> list[tuple[str, str]]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise InputError(f"{path}: no .txt or .md files in the corpus folder")
        return [(str(f.relative_to(path)), _read_text(f)) for f in files]
    if path.suffix.lower() != ".jsonl":
        raise InputError(f"{path}: expected a folder of .txt/.md files or a .jsonl of passages")
    documents: list[tuple[str, str]] = []
    for number, row in json_line_records(path):  # read as data files are: strictly, a bounded row at a time
        text = row.get("text", row.get("context")) if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise InputError(f"{path} line {number}: expected an object with a 'text' (or 'context') string")
        doc_id = row.get("id", row.get("context_id", f"line-{number}"))
        title = row.get("title")
        documents.append((str(doc_id), f"{title}: {text}" if isinstance(title, str) and title else text))
    return documents


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte {error.start})") from None


def passages_from_examples(texts: Sequence[tuple[str, str]]) -> list[Passage]:
    """Labelled examples as passages (id, text): the corpus when a task names none."""
    return [Passage(id=i, text=t, source=i) for i, t in texts]
