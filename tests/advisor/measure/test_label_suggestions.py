"""`assess --suggest-labels N`: the unlabelled inputs on which the close rivals disagree, as JSONL to annotate."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from advisor.cli.main import main
from advisor.measure.assess import assess_prepared
from advisor.measure.label_suggestions import close_rivals, suggest_labels
from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
from tests.conftest import write_jsonl

UNLABELLED = [
    "My card was charged three times",
    "The upload page shows a blank screen",
    "I am locked out after the update",
    "Invoice total looks wrong",
    "I was charged twice for my plan",  # already in the train split: never suggested
]


def with_unlabelled(task: Path) -> Path:
    write_jsonl(task.parent / "pool.jsonl", [{"id": f"u{i}", "text": t} for i, t in enumerate(UNLABELLED)])
    task.write_text(task.read_text().replace("data: {", "data: {unlabelled: pool.jsonl, "), encoding="utf-8")
    return task


def test_the_inputs_the_rivals_disagree_on_are_written_and_a_rerun_answers_nothing_twice(
    ticket_task: Path, tmp_path: Path
) -> None:
    task = with_unlabelled(ticket_task)
    # the tiny random model answers 'access' to every ticket: with 'billing' the commonest train label and
    # 'access' the commonest test one, its zero_shot beats the majority-class floor and can be recommended
    with (task.parent / "train.jsonl").open("a", encoding="utf-8") as train:
        train.write(
            json.dumps({"id": "extra-train", "text": "Please refund my last payment", "label": "billing"}) + "\n"
        )
    with (task.parent / "test.jsonl").open("a", encoding="utf-8") as test:
        test.write(json.dumps({"id": "extra-test", "text": "I forgot my username", "label": "access"}) + "\n")
    options = AssessOptions()
    run = prepare_run(task, options, QuietHooks())
    assessment = assess_prepared(run, options, QuietHooks())
    advice = assessment.recommendation
    assert advice is not None and advice.rung is not None, advice
    other = next(r.name for r in assessment.rungs if r.name != advice.rung)
    advice.undecided = [other]  # as if `other` led by more than the tolerance without a clear difference
    assert close_rivals(assessment) == [r.name for r in assessment.rungs]
    made = suggest_labels(run, assessment, 3)
    assert made.candidates == 4 and made.path is not None
    rows = [json.loads(line) for line in made.path.read_text().splitlines()]
    assert len(rows) == made.written == min(3, made.disagreements)
    for row in rows:
        assert row["label"] is None and row["text"] in UNLABELLED[:4]
        assert len(set(row["answers"].values())) > 1  # the rivals disagree on every suggested input
    again = suggest_labels(run, assessment, 3)
    assert again.path is not None and again.path.read_text() == made.path.read_text()


def test_no_close_call_means_nothing_to_suggest(ticket_task: Path) -> None:
    task = with_unlabelled(ticket_task)
    task.write_text(
        task.read_text().replace("  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n", ""),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["assess", str(task), "--suggest-labels", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "No close call to settle" in result.stdout


def test_suggest_labels_without_an_unlabelled_file_is_one_clear_error(ticket_task: Path) -> None:
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "--suggest-labels", "2"])
    assert result.exit_code == 2
    assert "data.unlabelled: --suggest-labels needs a file of unlabelled inputs" in result.output
    assert "Traceback" not in result.output
