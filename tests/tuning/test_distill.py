"""The distill rung on the tiny llama: the student learns the teacher's labels, the teacher answers once
(through the store), and the Assessment says what distillation bought against the teacher."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from tests.tuning.test_tuning import LORA
from tuning.answer_scores import answer_logprobs
from tuning.batch_loss import TrainRow, completion_logprobs
from tuning.distill_loop import DistillSettings, SoftExample, teacher_distribution, train_distillation
from tuning.methods import trainable_model
from tuning.options import LoraOptions


def test_the_teachers_distribution_is_its_label_likelihoods_at_the_temperature() -> None:
    got = teacher_distribution([-1.0, None, -2.0], 2.0)
    a, b = math.exp(-0.5), math.exp(-1.0)
    assert got == pytest.approx((a / (a + b), 0.0, b / (a + b)))


def test_the_student_learns_the_teachers_labels_on_a_toy_set(tiny_model: Any) -> None:
    model = trainable_model("lora", tiny_model, LoraOptions(**{**LORA, "r": 4}))
    examples = []
    for i in range(12):
        favourite = i % 3  # the teacher's label for this input, which its first token tells
        prompt = (5 + favourite, 9, 30 + i)
        rows = tuple(TrainRow((*prompt, 20 + label, 2), 2) for label in range(3))
        examples.append(SoftExample(rows, tuple(0.9 if label == favourite else 0.05 for label in range(3))))
    settings = DistillSettings(epochs=12, learning_rate=3e-2, temperature=1.0, examples_per_batch=4)
    report = train_distillation(model, examples, settings, 0)
    assert report.step_losses[-1] < report.step_losses[0]
    assert report.teacher_agreement[-1] == 1.0 > report.teacher_agreement[0]
    assert report.best_epoch == 12  # no metric: the last epoch


def test_scoring_each_prompt_once_gives_the_full_rows_scores_and_gradients(tiny_model: Any) -> None:
    model = trainable_model("lora", tiny_model, LoraOptions(**{**LORA, "r": 4}))
    prompts = [(5, 9, 30, 31), (6, 9, 32), (7, 9, 33, 34, 35)]
    answers = [(20, 2), (21, 22, 2), (23, 2)]
    rows = [TrainRow((*prompt, *answer), len(answer)) for prompt in prompts for answer in answers]
    trainable = [p for p in model.parameters() if p.requires_grad]

    def gradients_of(values: Any) -> list[Any]:
        values.sum().backward()
        gradients = [p.grad.clone() for p in trainable]
        model.zero_grad(set_to_none=True)
        return gradients

    for prefix in ((), (1, 11, 12)):
        full = completion_logprobs(rows, model, 0, prefix).reshape(3, 3)
        once = answer_logprobs(model, prompts, answers, 0, prefix)
        assert once.detach().numpy() == pytest.approx(full.detach().numpy(), abs=1e-5)
        for a, b in zip(gradients_of(once), gradients_of(full), strict=True):
            assert a.numpy() == pytest.approx(b.numpy(), abs=1e-5)


def assess(task: Path, out: Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["assess", str(task), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return dict(json.loads(out.read_text()))


def test_assess_distills_a_few_shot_teacher_once_and_reports_what_it_bought(ticket_task: Path) -> None:
    (ticket_task.parent / "more.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in ("My card was billed twice", "The page will not load"))
    )
    text = ticket_task.read_text().replace(
        "data: {train: train.jsonl, test: test.jsonl}",
        "data: {train: train.jsonl, test: test.jsonl, unlabelled: more.jsonl}",
    )
    student = "{rung: distill, teacher: few_shot, r: 2, epochs: 1, batch_tokens: 256, max_batch_size: 4}"
    rungs = f"rungs:\n  - zero_shot\n  - {{rung: few_shot, k: 2}}\n  - {student}\n"
    text = text[: text.index("rungs:")] + rungs + text[text.index("evaluation:") :]
    ticket_task.write_text(text + "forgetting: {max_items: 10}\n")
    first = assess(ticket_task, ticket_task.parent / "run.json")
    rungs_by_name = {r["name"]: r for r in first["rungs"]}
    distill = rungs_by_name["distill"]
    assert distill["step"] == 6 and distill["tuned"]
    facts = distill["training"]["distillation"]
    assert facts["teacher"] == "few_shot" and facts["inputs"] == 8 and facts["unlabelled"] == 2
    assert facts["targets"].startswith("soft") and len(facts["teacher_agreement"]) == 1
    (summary,) = first["distillation"]
    assert summary["teacher"] == "few_shot" and summary["zero_shot"] == "zero_shot"
    assert summary["prompt_tokens_saved"] == pytest.approx(
        rungs_by_name["few_shot"]["tokens"]["prompt_mean"] - distill["tokens"]["prompt_mean"]
    )
    assert summary["prompt_tokens_saved"] > 0  # the student needs no demonstrations
    card = (Path(distill["training"]["artifact"]) / "card.md").read_text()
    assert "## Distillation" in card and "`few_shot`" in card
    assert "student of few_shot" in (ticket_task.parent / "run.md").read_text()

    with sqlite3.connect(ticket_task.parent / ".advisor" / "store.sqlite") as db:
        stored = db.execute("SELECT count(*) FROM outputs").fetchone()[0]
    second = assess(ticket_task, ticket_task.parent / "again.json")  # the teacher is not asked again
    with sqlite3.connect(ticket_task.parent / ".advisor" / "store.sqlite") as db:
        assert db.execute("SELECT count(*) FROM outputs").fetchone()[0] == stored
    assert all(r["computed"] == 0 for r in second["rungs"]) and not second["rungs"][2]["training"]["trained_now"]


def test_a_teacher_that_is_not_a_rung_of_the_task_is_one_line(ticket_task: Path) -> None:
    text = ticket_task.read_text()
    text = (
        text[: text.index("rungs:")]
        + "rungs:\n  - {rung: distill, teacher: oracle}\n"
        + text[text.index("evaluation:") :]
    )
    ticket_task.write_text(text)
    result = CliRunner().invoke(main, ["assess", str(ticket_task)])
    assert result.exit_code == 2 and "no rung named 'oracle' to learn from" in result.output
    text = text.replace("teacher: oracle", "teacher: distill")
    ticket_task.write_text(text)
    result = CliRunner().invoke(main, ["assess", str(ticket_task)])
    assert result.exit_code == 2 and "learns from itself" in result.output


def test_micro_batches_give_the_whole_batchs_gradient(tiny_model: Any) -> None:
    import torch

    from tuning.distill_loop import accumulated_soft_backward

    items = [
        SoftExample(tuple(TrainRow((5 + i, 9, 20 + label, 2), 2) for label in range(3)), (0.7, 0.2, 0.1))
        for i in range(4)
    ]
    results = []
    for budget in (10_000, 10):  # everything at once; one input per forward pass
        torch.manual_seed(0)
        model = trainable_model("lora", tiny_model, LoraOptions(**{**LORA, "r": 2}))
        settings = DistillSettings(temperature=2.0, micro_batch_tokens=budget)
        loss, _ = accumulated_soft_backward(model, items, settings, 0, ())
        results.append((loss, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)
