"""RAG on XQuAD-en (1,190 SQuAD v1.1 dev questions over 240 passages): retrieval and answer quality.

Retrieval is measured on every question: recall@5 and MRR of the gold passage, embedding
throughput (passages/s) and single-query latency (embed + search). Answer quality, exact match and
token F1 of zero_shot against rag on the embedded model, runs through the real rungs on a seeded
sample of questions (generation over ~600-token prompts is the slow part on this CPU).

    python benchmarks/rag_xquad.py [--sample N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.rag import RagConfig, RagPredictor
from baselines.zero_shot import ZeroShotConfig, ZeroShotPredictor
from benchmarks.common import require_dataset, write_result
from harness.environment import choose_placement, describe_hardware
from harness.inference.engine import Engine
from harness.inference.models import EMBEDDED_MODEL, load_causal_lm, resolve_model
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.metrics.bootstrap import accuracy_estimate, mean_estimate, retrieval_ranks
from harness.metrics.scoring import qa_scorer
from harness.retrieval.corpus import load_corpus
from harness.retrieval.demonstrations import example_text
from harness.retrieval.embedding import Embedder
from harness.retrieval.vector_index import build_faiss, search
from harness.rungs import Predictor, RungContext
from harness.types import Example

INSTRUCTION = "Reply with only the answer: a few words copied exactly from the context. Do not write a sentence."


def load_questions() -> list[Example]:
    path = require_dataset("squad_xquad_en/xquad_en_qa.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        Example(r["id"], r["question"], r["answers"][0], meta={"answers": r["answers"], "gold": [r["context_id"]]})
        for r in rows
    ]


def retrieval(embedder: Embedder, corpus_path: Path, questions: list[Example]) -> dict[str, Any]:
    passages = load_corpus(corpus_path, chunk_words=400, overlap_words=50)
    started = time.perf_counter()
    vectors = embedder.embed([p.text for p in passages])
    embed_seconds = time.perf_counter() - started
    index = build_faiss(vectors, "flat")
    queries = embedder.embed([example_text(q) for q in questions])
    _, ids = search(index, queries, 5)
    retrieved = [[passages[i].source for i in row] for row in ids]
    ranks = retrieval_ranks([q.meta["gold"] for q in questions], retrieved)
    latencies = []
    for question in questions[:100]:
        started = time.perf_counter()
        search(index, embedder.embed([example_text(question)]), 5)
        latencies.append(time.perf_counter() - started)
    recall = mean_estimate([float(r is not None) for r in ranks])
    mrr = mean_estimate([1.0 / r if r else 0.0 for r in ranks])
    return {
        "passages": len(passages),
        "questions": len(questions),
        "recall_at_5": recall.__dict__,
        "mrr": mrr.__dict__,
        "embedding_passages_per_s": len(passages) / embed_seconds,
        "query_latency_p50_ms": 1000 * median(latencies),
        "query_latency_p95_ms": 1000 * float(np.percentile(latencies, 95)),
    }


def answer_quality(predictor: Predictor, questions: list[Example]) -> dict[str, Any]:
    score = qa_scorer()
    started = time.perf_counter()
    outputs = predictor.predict(questions)
    seconds = time.perf_counter() - started
    scores = [score(q, o) for q, o in zip(questions, outputs, strict=True)]
    return {
        "exact_match": accuracy_estimate([s.correct for s in scores]).__dict__,
        "f1": mean_estimate([s.value for s in scores]).__dict__,
        "contains_answer": accuracy_estimate([bool(s.detail["contains_answer"]) for s in scores]).__dict__,
        "prompt_tokens_mean": sum(o.prompt_tokens for o in outputs) / len(outputs),
        "examples_per_s": len(questions) / seconds,
        "examples": [
            {"question": q.input, "gold": q.target, "answer": o.text}
            for q, o in zip(questions[:5], outputs, strict=False)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=120, help="questions for the EM/F1 comparison (seeded)")
    args = parser.parse_args()
    questions = load_questions()
    corpus = require_dataset("squad_xquad_en/xquad_en_passages.jsonl")
    embedder = Embedder()
    result: dict[str, Any] = {"benchmark": "rag_xquad", "retrieval": retrieval(embedder, corpus, questions)}
    sample = random.Random(0).sample(questions, min(args.sample, len(questions)))
    placement = choose_placement("cpu")
    model, tokenizer = load_causal_lm(resolve_model(EMBEDDED_MODEL), placement.device, placement.dtype)
    fmt = PromptFormat(instruction=INSTRUCTION)
    with tempfile.TemporaryDirectory() as cache:
        context = RungContext(
            Engine(model, tokenizer),
            PromptBuilder(tokenizer, fmt),
            "qa",
            (),
            (),
            (),
            "bench",
            0,
            cache_dir=Path(cache),
            embedder=lambda: embedder,
        )
        zero = ZeroShotPredictor(ZeroShotConfig(mode="generate", max_new_tokens=24), context)
        rag_config = RagConfig(
            corpus=str(corpus),
            top_k=5,
            chunk_words=400,
            chunk_overlap=50,
            max_context_tokens=512,
            mode="generate",
            max_new_tokens=24,
        )
        rag = RagPredictor(rag_config, context)
        result["zero_shot"] = answer_quality(zero, sample)
        result["rag"] = answer_quality(rag, sample)
    result["sample"] = len(sample)
    result["hardware"] = describe_hardware(placement)
    path = write_result("rag_xquad", result)
    r = result["retrieval"]
    print(f"XQuAD-en: {r['questions']} questions, {r['passages']} passages, all-MiniLM-L6-v2 + FAISS flat")
    print(
        f"  recall@5 {r['recall_at_5']['value']:.3f}  MRR {r['mrr']['value']:.3f}  "
        f"embedding {r['embedding_passages_per_s']:.0f} passages/s  query p50 {r['query_latency_p50_ms']:.1f} ms"
    )
    for name in ("zero_shot", "rag"):
        q = result[name]
        print(
            f"  {name:9}: EM {q['exact_match']['value']:.3f} [{q['exact_match']['ci_low']:.3f}, "
            f"{q['exact_match']['ci_high']:.3f}]  F1 {q['f1']['value']:.3f} [{q['f1']['ci_low']:.3f}, "
            f"{q['f1']['ci_high']:.3f}]  contains answer {q['contains_answer']['value']:.3f}  "
            f"{q['prompt_tokens_mean']:.0f} prompt tokens  on {len(sample)} questions"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
