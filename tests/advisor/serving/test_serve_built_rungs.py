"""`advisor serve` builds each rung as `advisor assess` built it (advisor/measure/rung_builder.py): a few_shot
rung with `search:` answers with its choice on validation, a distill rung (whose artifact's key asks its
teacher) starts and answers as assessed, and a rung whose choice the store lacks is not served."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from advisor.measure.assess import assess
from advisor.measure.prepare import AssessOptions, QuietHooks
from advisor.serving.launch import ServeOptions, build_app, prepare
from harness.errors import InputError
from tests.advisor.serving.test_hostile_serve import asgi_post
from tests.conftest import TICKETS, write_jsonl

# the rung's own k (1) is not among those searched, so serving it unchosen would send fewer demonstrations
FEW_SHOT = "  - {rung: few_shot, k: 1, selection: fixed, calibrate: off, search: {space: {k: [4, 3]}}}\n"
DISTILL = "  - {rung: distill, teacher: few_shot, r: 2, epochs: 1, batch_tokens: 256, max_batch_size: 4}\n"
TEST = TICKETS[7::2]


def task_with(folder: Path, model: Path, rungs: str) -> Path:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(folder / "train.jsonl", rows[0::2] + rows[1:6:2])
    write_jsonl(folder / "test.jsonl", rows[7::2])
    (folder / "task.yaml").write_text(
        f"name: tickets\nmodel: {model}\ninstruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl, validation_size: 0.35}\n"
        f"rungs:\n{rungs}"
        "evaluation: {latency_sample: 0, bootstrap_resamples: 100}\n"
        "forgetting: {enabled: false}\ndecision: {seeds: off}\n",
        encoding="utf-8",
    )
    return folder / "task.yaml"


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, dict[str, Any]]:
    """A task with a searched few_shot rung and its distill student, assessed once: the task and its rungs."""
    task = task_with(tmp_path_factory.mktemp("served"), tiny_model_dir, FEW_SHOT + DISTILL)
    assessment = assess(task, AssessOptions(), QuietHooks())
    return task, {r.name: r.model_dump(mode="json") for r in assessment.rungs}


def served_answers(task: Path, model: str, texts: list[str]) -> list[dict[str, Any]]:
    """Each text answered by the in-process app of `advisor serve` for `model` (one completion each)."""
    options = ServeOptions(device="cpu")
    run, catalog = prepare(task, options, QuietHooks())
    app = build_app(run, catalog, options, None)

    async def ask() -> list[dict[str, Any]]:
        async with app.router.lifespan_context(app):  # the batcher runs for the app's lifetime
            replies = []
            for text in texts:
                body = json.dumps({"model": model, "prompt": text, "max_tokens": 4}).encode()
                status, reply = await asgi_post(app, "/v1/completions", body)
                assert status == 200, reply
                replies.append(reply)
            return replies

    return asyncio.run(ask())


def assert_answers_as_assessed(rung: dict[str, Any], replies: list[dict[str, Any]]) -> None:
    records = {r["input"]: r for r in rung["records"]}
    for (text, _), reply in zip(TEST, replies, strict=True):
        assert reply["usage"]["prompt_tokens"] == records[text]["prompt_tokens"], text
        assert reply["choices"][0]["text"] == records[text]["output"], text


def test_a_searched_few_shot_rung_answers_with_its_choice_on_validation(assessed: tuple[Path, dict[str, Any]]) -> None:
    task, rungs = assessed
    few_shot = rungs["few_shot"]
    assert few_shot["selection"]["chosen_params"]["k"] in (3, 4) and few_shot["config"]["k"] != 1
    replies = served_answers(task, "few_shot", [text for text, _ in TEST])
    assert_answers_as_assessed(few_shot, replies)


def test_a_distill_rung_starts_and_answers_as_the_assessment_did(assessed: tuple[Path, dict[str, Any]]) -> None:
    task, rungs = assessed
    replies = served_answers(task, "distill", [text for text, _ in TEST])
    assert_answers_as_assessed(rungs["distill"], replies)
    assert {r["usage"]["prompt_tokens"] for r in replies} != {r["prompt_tokens"] for r in rungs["few_shot"]["records"]}


def test_a_rung_whose_choice_is_not_stored_is_not_served_and_says_how_to_make_it(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    task = task_with(tmp_path, tiny_model_dir, "  - {rung: zero_shot, calibrate: off}\n" + FEW_SHOT + DISTILL)
    _, catalog = prepare(task, ServeOptions(device="cpu"), QuietHooks())  # a store that holds nothing
    assert [r.name for r in catalog.prompting] == ["zero_shot"]  # nothing to choose: served
    assert catalog.unchosen == ("few_shot", "distill")  # the student's teacher has no choice either
    assert f"not served: few_shot (has no choice on validation in the result store yet: advisor assess {task}" in (
        "\n".join(catalog.describe())
    )
    with pytest.raises(InputError, match=f"no choice on validation .*advisor assess {task} --rungs few_shot"):
        catalog.route("few_shot")
    with sqlite3.connect(tmp_path / ".advisor" / "store.sqlite") as db:  # nothing was chosen, so nothing answered
        assert db.execute("SELECT count(*) FROM outputs").fetchone()[0] == 0
