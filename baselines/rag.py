"""The rag rung: passages retrieved from a corpus (sentence-transformers + FAISS) in the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.data.hashing import content_hash
from harness.errors import InputError
from harness.inference.answerer import PromptParts
from harness.inference.answering import resolve_mode
from harness.label_scoring import LabelScoring, calibrated, check_calibrate
from harness.retrieval.corpus import corpus_hash, load_corpus, passages_from_examples
from harness.retrieval.demonstrations import example_text
from harness.retrieval.vector_index import Passage, StoredIndex, cached_index
from harness.rungs import Predictor, PromptSizes, RequestShape, RungContext, TunedModel, answer_tokens, rung
from harness.types import Example, Output

# A content-free input is shown with the context of an empty retrieval, none: retrieving for "N/A"
# is meaningless, and calibrating in each question's own passages would divide out what they say.
CALIBRATION_CONTEXT = "no passages"


class RagConfig(LabelScoring):
    """Retrieve `top_k` passages and put as many as fit in `max_context_tokens` before the question.

    `search: {space: {top_k: [2, 4, 8]}}` chooses among them on validation.
    """

    corpus: str | None = None  # a folder of .txt/.md, or a .jsonl of passages; none: the train split
    top_k: int = Field(default=4, ge=1, le=100)
    chunk_words: int = Field(default=120, ge=8, le=8192)
    chunk_overlap: int = Field(default=20, ge=0)
    index: Literal["flat", "ivf", "hnsw"] = "flat"
    max_context_tokens: int = Field(default=768, ge=16, le=1_000_000)
    max_new_tokens: int = Field(default=32, ge=1, le=4096)

    @model_validator(mode="after")
    def _overlap_smaller(self) -> RagConfig:
        if self.chunk_overlap >= self.chunk_words:
            raise ValueError("chunk_overlap must be smaller than chunk_words")
        return self

    def files_needed(self) -> dict[str, str | None]:
        """Its own corpus, when it names one (without, it retrieves from the train split)."""
        return {"corpus": self.corpus} if self.corpus is not None else {}

    def request_shape(self, sizes: PromptSizes, has_labels: bool) -> RequestShape:
        """top_k passages (a train example's size, or a chunk's) before the question, within the context budget."""
        passage = min(sizes.demo or self.chunk_words * 1.3, 512)
        return RequestShape(
            sizes.zero + min(self.top_k * passage, self.max_context_tokens),
            embeds=True,
            new_tokens=answer_tokens(self.mode, self.max_new_tokens, has_labels),
        )


class RagPredictor:
    """Embeds each question, retrieves from a stored FAISS index, and answers with the passages."""

    def __init__(self, config: RagConfig, context: RungContext):
        self.config = config
        self.context = context
        self.answerer = calibrated(context.answerer(), config, context, "rag", lambda p: PromptParts(p.example))
        self.corpus_path: Path | None = context.resolve(config.corpus) if config.corpus else None
        if self.corpus_path is not None and not self.corpus_path.exists():
            raise InputError(f"rungs.rag.corpus: {self.corpus_path} not found")
        self._index: StoredIndex | None = None
        self._corpus_fingerprint: str | None = None
        self.index_built_now = False

    def corpus_fingerprint(self) -> str:
        """What the index is built from (hashed once per run: a corpus can be large)."""
        if self._corpus_fingerprint is None:
            if self.corpus_path is not None:
                source = corpus_hash(self.corpus_path)
                self._corpus_fingerprint = content_hash(
                    "corpus", source, self.config.chunk_words, self.config.chunk_overlap
                )
            else:
                self._corpus_fingerprint = content_hash(
                    "train", [(e.id, e.input, e.target) for e in self.context.train]
                )
        return self._corpus_fingerprint

    def fingerprint(self) -> str:
        """Model, prompt, labels, options and corpus: everything that decides the outputs."""
        ctx = self.context
        return content_hash(
            "rag",
            self.config.answer_options(CALIBRATION_CONTEXT),
            self.answerer.fingerprint(),
            asdict(ctx.prompts.format),
            ctx.labels,
            self.corpus_fingerprint(),
        )

    def index(self) -> StoredIndex:
        """The stored index for this corpus and embedder, built on first use."""
        if self._index is None:
            embedder = self._embedder()
            key = content_hash(self.corpus_fingerprint(), embedder.fingerprint, self.config.index)
            folder = self.context.cache_dir / "indexes" / key
            self._index, self.index_built_now = cached_index(folder, lambda: self._build(embedder), self.config.index)
        return self._index

    def _build(self, embedder: Any) -> tuple[Any, list[Passage]]:
        if self.corpus_path is not None:
            passages = load_corpus(self.corpus_path, self.config.chunk_words, self.config.chunk_overlap)
        else:
            passages = passages_from_examples(
                [(e.id, f"{example_text(e)}\nAnswer: {e.target}") for e in self.context.train]
            )
        return embedder.embed([p.text for p in passages]), passages

    def _embedder(self) -> Any:
        if self.context.embedder is None:
            raise InputError("rungs.rag: no embedder is available in this run")
        return self.context.embedder()

    def retrieve(self, examples: Sequence[Example]) -> list[list[Passage]]:
        """The top_k passages for each example, best first."""
        queries = self._embedder().embed([example_text(e) for e in examples])
        return [[p for p, _ in hits] for hits in self.index().top(queries, self.config.top_k)]

    def tuned(self) -> TunedModel | None:
        """No weights change."""
        return None

    def prepare(self) -> None:
        """Load the model, the embedder and the index before any request is timed."""
        self.answerer.prepare()
        self.index()

    def fit_budget(self, passages: Sequence[Passage]) -> list[str]:
        """Passages in rank order while they fit the token budget; a first one too long is cut to it."""
        tokenizer = self.context.engine.tokenizer
        kept: list[str] = []
        used = 0
        for passage in passages:
            ids = tokenizer(passage.text, add_special_tokens=False)["input_ids"]
            if used + len(ids) > self.config.max_context_tokens:
                if not kept:
                    kept.append(tokenizer.decode(ids[: self.config.max_context_tokens]))
                break
            kept.append(passage.text)
            used += len(ids)
        return kept

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """Retrieve, fit to the budget, answer; each output names the sources it was shown."""
        if not examples:
            return []
        retrieved = self.retrieve(examples)
        parts = [
            PromptParts(e, passages=tuple(self.fit_budget(r)), detail={"retrieved": [p.source for p in r]})
            for e, r in zip(examples, retrieved, strict=True)
        ]
        mode = resolve_mode(self.config.mode, self.context.labels, "rag")
        return self.answerer.answer(parts, self.context.labels, mode, self.config.max_new_tokens)


@rung("rag", config=RagConfig, sweep=("top_k",), step=2, remote=True)
def build_rag(config: RagConfig, context: RungContext) -> Predictor:
    """Build the rag predictor."""
    if config.corpus is None and not context.train:
        raise InputError("rungs.rag: name a corpus, or give a train split to retrieve labelled examples from")
    check_calibrate(config, context.labels, "rag")  # bad input fails before any work
    return RagPredictor(config, context)
