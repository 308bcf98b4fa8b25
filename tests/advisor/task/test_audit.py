"""The data audit: each finding on small crafted data, a clean set, chat records, and the `advisor audit` command."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import advisor.task.audit
from advisor.cli.main import main
from advisor.task.audit import AuditOptions, run_audit
from harness.audit import AuditSettings, Finding, audit_examples
from harness.audit.chat import audit_chat_records
from harness.audit.near import similar_pairs
from harness.retrieval.embedding import Embedder
from harness.types import Example
from tests.conftest import write_jsonl

LABELS = ("billing", "technical", "access")
CLEAN_TRAIN = [
    Example("t1", "I was charged twice for my plan", "billing"),
    Example("t2", "My invoice shows the wrong amount", "billing"),
    Example("t3", "The app crashes on upload", "technical"),
    Example("t4", "Sync fails with error 500", "technical"),
    Example("t5", "I cannot log in to my account", "access"),
    Example("t6", "Password reset email never arrives", "access"),
]
CLEAN_TEST = [
    Example("e1", "Refund the extra charge please", "billing"),
    Example("e2", "Pages load forever in Firefox", "technical"),
    Example("e3", "Two factor code is rejected", "access"),
]
LOOSE = AuditSettings(min_per_class=1)  # the crafted sets are tiny: "too few per class" only where a test asks


class BagOfWords:
    """A deterministic stand-in embedder: the same words in any order (or case) give cosine 1."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.casefold().replace("?", " ").split():
                vectors[row, zlib.crc32(word.encode()) % 256] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-9)


def fake() -> Callable[[], BagOfWords]:
    return BagOfWords


def by_code(findings: Sequence[Finding]) -> dict[str, Finding]:
    codes = [f.code for f in findings]
    assert len(codes) == len(set(codes)), codes
    return {f.code: f for f in findings}


def audit(
    train: Sequence[Example],
    test: Sequence[Example],
    validation: Sequence[Example] = (),
    settings: AuditSettings = LOOSE,
    **kwargs: Any,
) -> dict[str, Finding]:
    kwargs.setdefault("labels", LABELS)
    kwargs.setdefault("embedder", fake())
    return by_code(audit_examples(train, validation, test, settings=settings, **kwargs))


def test_clean_data_gives_only_the_class_balance_summary() -> None:
    found = audit(CLEAN_TRAIN, CLEAN_TEST, tokenizer_lengths=lambda texts: [len(t.split()) for t in texts])
    assert list(found) == ["class_balance"]
    balance = found["class_balance"]
    assert balance.severity == "info" and balance.detail["counts"]["train"] == {
        "billing": 2,
        "technical": 2,
        "access": 2,
    }


def test_exact_duplicates_ignore_case_and_whitespace() -> None:
    train = [*CLEAN_TRAIN, Example("dup", "  the APP crashes   on upload ", "technical")]
    found = audit(train, CLEAN_TEST)["exact_duplicates"]
    assert (found.severity, found.count, found.row_ids) == ("warning", 1, ("train:dup",))
    assert found.detail["groups"][0]["ids"] == ["train:t3", "train:dup"]


def test_near_duplicates_are_reworded_copies_above_the_threshold() -> None:
    train = [*CLEAN_TRAIN, Example("re", "on upload the app crashes", "technical")]
    found = audit(train, CLEAN_TEST)
    near = found["near_duplicates"]
    assert (near.severity, near.count, near.row_ids) == ("info", 1, ("train:re",))
    assert near.detail["examples"][0]["cosine"] == pytest.approx(1.0)
    assert "exact_duplicates" not in found
    assert "near_duplicates" not in audit(train, CLEAN_TEST, embedder=None)  # no embedder: no near checks


def test_leakage_train_to_test_is_an_error_and_validation_to_test_a_warning() -> None:
    test = [*CLEAN_TEST, Example("leak", "sync fails with error 500", "technical")]
    validation = [Example("v1", "Refund the extra charge please", "billing")]
    found = audit_examples(CLEAN_TRAIN, validation, test, labels=LABELS, embedder=fake(), settings=LOOSE)
    leaks = {f.detail["source"]: f for f in found if f.code == "leakage"}
    assert (leaks["train"].severity, leaks["train"].row_ids) == ("error", ("test:leak",))
    assert (leaks["validation"].severity, leaks["validation"].row_ids) == ("warning", ("test:e1",))
    assert leaks["train"].detail["share"] == pytest.approx(0.25) and found[0].severity == "error"


def test_near_leakage_finds_a_reworded_test_row() -> None:
    test = [*CLEAN_TEST, Example("para", "error 500 sync fails with", "technical")]
    found = audit(CLEAN_TRAIN, test)
    near = found["near_leakage"]
    assert (near.severity, near.count, near.row_ids) == ("warning", 1, ("test:para",))
    assert near.detail["examples"][0]["train"] == "train:t4"
    assert "leakage" not in found


def test_conflicting_labels_cap_the_reachable_accuracy() -> None:
    train = [*CLEAN_TRAIN, Example("c1", "Sync fails with error 500", "billing")]
    test = [*CLEAN_TEST, Example("x1", "Where is my data", "access"), Example("x2", "where is my data", "billing")]
    conflict = audit(train, test)["conflicting_labels"]
    assert conflict.severity == "warning" and conflict.count == 4
    assert set(conflict.row_ids) == {"train:t4", "train:c1", "test:x1", "test:x2"}
    assert conflict.detail["within_split_groups"] == 2 and conflict.detail["across_split_groups"] == 0
    assert conflict.detail["test_accuracy_ceiling"] == pytest.approx(4 / 5)  # one of the two test twins must miss
    assert conflict.detail["train_minority_share"] == pytest.approx(1 / 7, abs=1e-4)
    assert "80.0% test accuracy" in conflict.message


def test_class_balance_flags_small_classes_imbalance_and_labels_train_never_shows() -> None:
    train = [Example(f"b{i}", f"billing question {i}", "billing") for i in range(12)]
    train.append(Example("t0", "the app crashes", "technical"))
    test = [Example("e1", "refund me", "billing"), Example("e2", "locked out", "access")]
    found = audit(train, test, settings=AuditSettings(min_per_class=3, max_imbalance=10), embedder=None)
    assert found["few_examples_per_class"].detail["classes"] == {"technical": 1, "access": 0}
    assert found["few_examples_per_class"].row_ids == ("train:t0",)
    assert found["class_imbalance"].detail["imbalance_ratio"] == 12
    assert found["label_missing_from_train"].row_ids == ("test:e2",)
    assert found["class_balance"].count == 3


def test_rows_longer_than_the_context_or_the_training_length() -> None:
    train = [*CLEAN_TRAIN, Example("long", "word " * 30, "billing")]
    test = [*CLEAN_TEST, Example("huge", "word " * 60, "access")]
    settings = AuditSettings(min_per_class=1, context_length=50, train_max_length=20, prompt_overhead_tokens=5)
    found = audit(train, test, settings=settings, tokenizer_lengths=lambda texts: [len(t.split()) for t in texts])
    context, training = found["too_long_for_context"], found["too_long_for_training"]
    assert (context.severity, context.row_ids, context.detail["longest"]) == ("error", ("test:huge",), 66)
    assert (training.severity, training.row_ids, training.detail["longest"]) == ("warning", ("train:long",), 36)


def test_empty_fields_are_errors_and_not_duplicates_of_each_other() -> None:
    train = [*CLEAN_TRAIN, Example("blank1", "   ", "billing"), Example("blank2", "\t", "billing")]
    test = [*CLEAN_TEST, Example("notarget", "Where is my invoice", " ")]
    found = audit(train, test, labels=())
    assert found["empty_input"].row_ids == ("train:blank1", "train:blank2")
    assert found["empty_target"].row_ids == ("test:notarget",) and found["empty_target"].severity == "error"
    assert "exact_duplicates" not in found and "near_duplicates" not in found


def test_count_is_complete_when_the_listed_row_ids_are_cut() -> None:
    train = [*CLEAN_TRAIN, *(Example(f"d{i}", "Sync fails with error 500", "technical") for i in range(7))]
    found = audit(train, CLEAN_TEST, settings=AuditSettings(min_per_class=1, max_listed=3))["exact_duplicates"]
    assert found.count == 7 and found.row_ids == ("train:d0", "train:d1", "train:d2")


def test_range_search_matches_brute_force_cosine() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16))
    vectors = np.repeat(centres, 5, axis=0) + 0.15 * rng.normal(size=(100, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    firsts, seconds, scores = similar_pairs(vectors, 0.9, batch=7)  # batches that split the clusters
    cosine = vectors @ vectors.T
    truth = {(i, j) for i in range(100) for j in range(i + 1, 100) if cosine[i, j] >= 0.9}
    assert set(zip(firsts.tolist(), seconds.tolist(), strict=True)) == truth and len(truth) > 50
    assert np.allclose(scores, [cosine[i, j] for i, j in zip(firsts, seconds, strict=True)], atol=1e-5)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.mark.slow  # seconds, not milliseconds: `make test-fast` leaves it to `make test`
def test_the_real_embedder_finds_paraphrases_and_leaves_different_requests(embedder: Embedder) -> None:
    train = [
        Example("a", "How do I reset my password?", "access"),
        Example("b", "how can i reset my password", "access"),
        Example("c", "I was charged twice this month", "billing"),
    ]
    test = [Example("q", "I got charged two times this month", "billing"), Example("r", "Add a dark mode", "technical")]
    settings = AuditSettings(near_threshold=0.85, min_per_class=1)
    found = by_code(audit_examples(train, (), test, labels=LABELS, embedder=lambda: embedder, settings=settings))
    assert found["near_duplicates"].row_ids == ("train:b",)
    assert found["near_leakage"].row_ids == ("test:q",)
    assert found["near_leakage"].detail["examples"][0]["train"] == "train:c"


def chat(*turns: str) -> dict[str, Any]:
    """A chat record from 'role:content' strings."""
    return {"messages": [dict(zip(("role", "content"), turn.split(":", 1), strict=True)) for turn in turns]}


CHAT_LINES = [
    chat("user:hi", "assistant:hello"),
    chat("tool:x", "assistant:y"),
    chat("user:a", "user:b", "assistant:c"),
    chat("user:a", "system:s", "assistant:c"),
    chat("system:s", "user:question"),
    chat("user:  ", "assistant:answer"),
    {"prompt": "not chat"},
]


def test_chat_records_report_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in CHAT_LINES) + "\n{broken\n", encoding="utf-8")
    found = by_code(audit_chat_records(path))
    assert found["chat_unknown_role"].row_ids == ("train.jsonl:2",)
    assert found["chat_unknown_role"].detail["roles"] == {"tool": 1}
    assert found["chat_order"].row_ids == ("train.jsonl:3", "train.jsonl:4")
    assert found["chat_no_final_assistant"].row_ids == ("train.jsonl:5",)
    assert found["chat_empty_content"].row_ids == ("train.jsonl:6",)
    assert found["chat_malformed"].row_ids == ("train.jsonl:7", "train.jsonl:8")
    assert all(f.severity == "error" for f in found.values())
    good = tmp_path / "good.jsonl"
    write_jsonl(good, [CHAT_LINES[0]])
    assert audit_chat_records(good) == []


def test_a_chat_task_with_broken_records_still_reports_them_all(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", CHAT_LINES[:3])
    write_jsonl(tmp_path / "test.jsonl", CHAT_LINES[:1])
    task = tmp_path / "task.yaml"
    task.write_text("name: chat\ntype: qa\ndata: {train: train.jsonl, test: test.jsonl}\n", encoding="utf-8")
    report = run_audit(task, AuditOptions(check_near=False, check_lengths=False))
    codes = [f.code for f in report.findings]
    assert codes == ["chat_unknown_role", "chat_order", "data_not_loaded"] and not report.clean
    assert "train.jsonl row 2" in report.findings[-1].message


def write_task(folder: Path, model: Path, train: list[dict[str, str]], test: list[dict[str, str]]) -> Path:
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", test)
    task = folder / "task.yaml"
    task.write_text(
        f"name: tickets\nmodel: {model}\ndata: {{train: train.jsonl, test: test.jsonl}}\n"
        "rungs: [zero_shot, {rung: lora, max_length: 100}]\n",
        encoding="utf-8",
    )
    return task


def rows(examples: Sequence[Example]) -> list[dict[str, str]]:
    return [{"id": e.id, "text": str(e.input), "label": e.target} for e in examples]


@pytest.mark.slow  # seconds, not milliseconds: `make test-fast` leaves it to `make test`
def test_cli_audit_json_with_the_real_embedder_and_tokenizer(
    tmp_path: Path, tiny_model_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(advisor.task.audit, "_default_embedder", lambda: embedder)  # the same real model, loaded once
    train = [*rows(CLEAN_TRAIN), {"id": "long", "text": "please help " * 20, "label": "billing"}]
    test = [*rows(CLEAN_TEST), {"id": "leak", "text": "The app crashes on upload", "label": "technical"}]
    task = write_task(tmp_path, tiny_model_dir, train, test)
    out = tmp_path / "audit.json"
    result = CliRunner().invoke(main, ["audit", str(task), "--json", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(out.read_text())
    codes = {f["code"]: f for f in data["findings"]}
    assert codes["leakage"]["row_ids"] == ["test:leak"] and codes["leakage"]["severity"] == "error"
    assert codes["too_long_for_training"]["row_ids"] == ["train:long"] and data["settings"]["train_max_length"] == 100
    assert codes["few_examples_per_class"]["count"] == 3 and data["rows"] == {"train": 7, "validation": 0, "test": 4}
    assert data["clean"] is False and data["counts"]["error"] == 1 and data["seconds"]["total"] > 0


def test_cli_audit_says_clean_data_is_clean_in_one_line(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(advisor.task.audit, "_default_embedder", BagOfWords)
    train = [
        {"id": f"{label}{i}", "text": f"{label} request number {i}", "label": label}
        for label in LABELS
        for i in range(9)  # one of each nine is carved off as validation: eight per class stay in train
    ]
    task = write_task(tmp_path, tiny_model_dir, train, rows(CLEAN_TEST))
    result = CliRunner().invoke(main, ["audit", str(task), "--near-threshold", "0.99"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Clean: no duplicates, leakage") and "class_balance" in result.stdout


def test_cli_audit_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "missing.yaml: file not found" in result.stderr
    task = tmp_path / "task.yaml"
    task.write_text("name: t\ndata: {train: train.jsonl, test: test.jsonl}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["audit", str(task)])
    assert result.exit_code == 2 and "file not found" in result.stderr and "Traceback" not in result.output
    assert CliRunner().invoke(main, ["audit", str(task), "--near-threshold", "1.5"]).exit_code == 2


def test_the_table_lists_findings_errors_first_and_prints_data_literally() -> None:
    from rich.console import Console

    from advisor.report.audit import print_audit
    from advisor.task.audit import AuditReport

    findings = [*audit(CLEAN_TRAIN, [*CLEAN_TEST, CLEAN_TRAIN[0]]).values()]
    findings.append(Finding("conflicting_labels", "warning", 1, "label [bold]x[/bold] conflicts", ("train:[1]",)))
    seconds = {"total": 1.0, "embedder_load": 0.0, "embed": 0.5, "search": 0.1}
    report = AuditReport("t", "task.yaml", {"train": 6, "test": 4}, tuple(findings), LOOSE, seconds)
    console = Console(record=True, width=240)
    print_audit(report, console)
    text = console.export_text()
    assert text.index("leakage") < text.index("class_balance") and "test:t1" in text
    assert "label [bold]x[/bold] conflicts" in text and "train:[1]" in text
    assert "1 error, 1 warning, 1 note" in text
