"""few_shot and rag on the tiny model with the real embedder and FAISS; qa metrics by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from baselines.few_shot import FewShotConfig, FewShotPredictor
from baselines.rag import RagConfig, RagPredictor
from baselines.zero_shot import ZeroShotConfig, ZeroShotPredictor
from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.metrics.scoring import normalize_answer, qa_scorer, token_f1
from harness.retrieval.demonstrations import DemoSelector
from harness.retrieval.embedding import Embedder
from harness.retrieval.vector_index import Passage
from harness.rungs import Predictor, RungContext
from harness.types import Example, Output
from tests.conftest import TICKETS, write_jsonl

POOL = [Example(f"p{i}", text, label) for i, (text, label) in enumerate(TICKETS)]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_similar_selection_returns_the_true_nearest_neighbours(embedder: Embedder) -> None:
    queries = [Example("q1", "my card was billed twice", "billing"), Example("q2", "cannot sign in", "access")]
    chosen = DemoSelector(POOL, 3, "similar", False, 0, lambda: embedder).choose(queries)
    pool_vectors = embedder.embed([e.input for e in POOL])
    for query, demos in zip(queries, chosen, strict=True):
        cosine = pool_vectors @ embedder.embed([query.input])[0]
        truth = [POOL[i].id for i in np.argsort(-cosine)[:3]]
        assert [d.id for d in reversed(demos)] == truth  # the most similar comes last, nearest the question


def test_balanced_selection_shows_every_label_and_is_reproducible() -> None:
    fixed = DemoSelector(POOL, 3, "fixed", True, 7).choose([Example("a", "x", "billing")] * 2)
    assert {d.target for d in fixed[0]} == {"billing", "technical", "access"} and fixed[0] == fixed[1]
    again = DemoSelector(POOL, 3, "fixed", True, 7).choose([Example("a", "x", "billing")])
    assert again[0] == fixed[0]
    random_demos = DemoSelector(POOL, 4, "random", False, 7).choose([Example(f"e{i}", "x", "b") for i in range(6)])
    assert len({tuple(d.id for d in demos) for demos in random_demos}) > 1


def run_task(folder: Path, body: str) -> dict[str, Any]:
    (folder / "task.yaml").write_text(body, encoding="utf-8")
    result = CliRunner().invoke(main, ["assess", str(folder / "task.yaml"), "-o", str(folder / "r.json")])
    assert result.exit_code == 0, result.output
    return json.loads((folder / "r.json").read_text())


def test_few_shot_sweep_and_rag_run_side_by_side(ticket_task: Path) -> None:
    body = ticket_task.read_text().replace(
        "rungs:\n  - zero_shot\n  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
        "rungs:\n  - zero_shot\n  - {rung: few_shot, k: [1, 3], balanced: true}\n"
        "  - {rung: few_shot, name: near, k: 2, selection: similar}\n  - {rung: rag, top_k: 2}\n",
    )
    data = run_task(ticket_task.parent, body)
    rungs = {r["name"]: r for r in data["rungs"]}
    assert list(rungs) == ["zero_shot", "few_shot_k1", "few_shot_k3", "near", "rag"]
    assert rungs["few_shot_k3"]["config"]["k"] == 3
    base = rungs["zero_shot"]["tokens"]["prompt_mean"]
    assert base < rungs["few_shot_k1"]["tokens"]["prompt_mean"] < rungs["few_shot_k3"]["tokens"]["prompt_mean"]
    assert rungs["rag"]["tokens"]["prompt_mean"] > base
    assert all(len(r["records"]) == 6 for r in rungs.values())


def qa_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("Refunds are paid back within five business days.", encoding="utf-8")
    (docs / "passwords.md").write_text("Passwords are reset from the login page by email.", encoding="utf-8")
    (docs / "exports.md").write_text("Exports are CSV files sent to the account owner.", encoding="utf-8")
    rows = [
        {"question": "How long do refunds take?", "answers": ["five business days", "5 days"], "gold": "refunds.md"},
        {"question": "How is a password reset?", "answers": ["by email"], "gold": "passwords.md"},
        {"question": "What format are exports?", "answers": ["CSV"], "gold": ["exports.md"]},
    ]
    write_jsonl(tmp_path / "qa.jsonl", rows)
    return tmp_path


def test_rag_on_a_qa_task_reports_em_f1_and_retrieval_recall(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = qa_folder(tmp_path)
    body = (
        f"name: faq\ntype: qa\nmodel: {tiny_model_dir}\ninstruction: Answer briefly.\n"
        "data: {test: qa.jsonl, fields: {input: question, target: answers, gold: gold}}\n"
        "rungs:\n  - {rung: zero_shot, max_new_tokens: 4}\n  - {rung: rag, corpus: docs, top_k: 2, max_new_tokens: 4}\n"
        "evaluation: {latency_sample: 1, bootstrap_resamples: 200}\n"
    )
    data = run_task(folder, body)
    zero, rag = data["rungs"]
    assert set(zero["metrics"]) == {"exact_match", "f1", "contains_answer"} and zero["primary_metric"] == "f1"
    assert set(rag["metrics"]) == {"exact_match", "f1", "contains_answer", "recall_at_2", "mrr"}
    # the embedder finds each gold document for these plain questions
    assert rag["metrics"]["recall_at_2"]["value"] == 1.0 and rag["metrics"]["mrr"]["value"] >= 0.5
    assert len(list((folder / ".advisor" / "indexes").iterdir())) >= 1
    again = run_task(folder, body)
    assert all(r["computed"] == 0 for r in again["rungs"])


def test_a_missing_corpus_is_bad_input(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = qa_folder(tmp_path)
    (folder / "task.yaml").write_text(
        f"name: faq\ntype: qa\nmodel: {tiny_model_dir}\ndata: {{test: qa.jsonl, fields: {{input: question}}}}\n"
        "rungs: [{rung: rag, corpus: nowhere}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["assess", str(folder / "task.yaml")])
    assert result.exit_code == 2 and "rungs.rag.corpus:" in result.stderr
    assert "nowhere: corpus not found" in result.stderr


def test_a_passage_longer_than_the_budget_is_cut_to_it(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    fmt = PromptFormat(instruction="Answer.")
    context = RungContext(
        Engine(tiny_model, tiny_tokenizer), PromptBuilder(tiny_tokenizer, fmt), "qa", (), (), (), "m", 0
    )
    rag = RagPredictor(RagConfig(corpus=None, max_context_tokens=20), context)
    long = Passage("a", " ".join(["refund"] * 200), "a")
    short = Passage("b", "short passage", "b")
    kept = rag.fit_budget([long, short])
    assert len(kept) == 1 and len(tiny_tokenizer(kept[0], add_special_tokens=False)["input_ids"]) <= 21
    assert rag.fit_budget([short, long]) == ["short passage"]  # the next one does not fit and is left out


@pytest.mark.parametrize("kind", ["zero_shot", "few_shot", "rag"])
def test_a_deferred_model_is_loaded_in_prepare_so_no_timed_answer_pays_for_loading(
    kind: str, tiny_model: Any, tiny_tokenizer: Any, embedder: Embedder
) -> None:
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return tiny_model

    labels = ("access", "billing", "technical")
    context = RungContext(
        Engine.deferred(load, tiny_tokenizer, "cpu"),
        PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Route the ticket.", labels=labels)),
        "classification",
        labels,
        tuple(POOL),
        (),
        "m",
        0,
        embedder=lambda: embedder,
    )
    predictors: dict[str, Predictor] = {
        "zero_shot": ZeroShotPredictor(ZeroShotConfig(), context),
        "few_shot": FewShotPredictor(FewShotConfig(k=1), context),
        "rag": RagPredictor(RagConfig(corpus=None, top_k=1), context),
    }
    predictor = predictors[kind]
    predictor.prepare()
    assert loads == [1]
    predictor.predict([Example("q", "cannot sign in", "access")])
    assert loads == [1]


def test_squad_exact_match_and_f1_by_hand() -> None:
    assert normalize_answer("The  Broncos!") == "broncos"
    assert token_f1("Denver Broncos won", "the Denver Broncos") == pytest.approx(2 * (2 / 3) * 1.0 / (2 / 3 + 1.0))
    score = qa_scorer()
    example = Example("q", "who?", "Denver Broncos", meta={"answers": ["Denver Broncos", "Broncos"]})
    exact = score(example, Output("the broncos.\nextra line", 5, 3, 0.1))
    assert exact.correct and exact.value == 1.0
    partial = score(example, Output("Carolina Panthers", 5, 3, 0.1))
    assert not partial.correct and partial.value == 0.0 and not partial.detail["contains_answer"]
    wrapped = score(example, Output("It was the Denver Broncos, in 2016.", 5, 3, 0.1))
    assert not wrapped.correct and wrapped.detail["contains_answer"] and 0 < wrapped.value < 1
