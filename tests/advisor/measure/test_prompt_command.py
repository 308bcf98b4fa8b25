"""`advisor prompt`: what a rung sends for one test example, shown as the answerer encodes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from transformers import AutoTokenizer

from advisor.cli.main import main
from tests.conftest import TICKETS, write_jsonl

TRAIN_TEXTS = {text for text, _ in TICKETS[0::2]}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["prompt", *args], catch_exceptions=False)


def as_json(*args: str) -> dict[str, Any]:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_zero_shot_shows_the_instruction_the_input_and_the_tokens_the_model_reads(
    ticket_task: Path, tiny_model_dir: Path
) -> None:
    view = as_json(str(ticket_task), "--rung", "zero_shot", "--example", "r3")
    assert view["example_id"] == "r3"
    (shown,) = view["prompts"]
    roles = [m["role"] for m in shown["messages"]]
    assert roles == ["system", "user"]
    assert "Route the ticket." in shown["messages"][0]["content"]
    assert shown["messages"][1]["content"] == TICKETS[3][0]
    assert "Route the ticket." in shown["text"] and TICKETS[3][0] in shown["text"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rendered = tokenizer.apply_chat_template(shown["messages"], add_generation_prompt=True, tokenize=False)
    assert shown["text"] == rendered
    assert shown["tokens"] == len(tokenizer(rendered, add_special_tokens=False)["input_ids"]) == view["prompt_tokens"]
    assert view["mode"] == "score" and view["answer"] in {"billing", "technical", "access"}


def test_few_shot_shows_its_demonstrations_from_train(ticket_task: Path) -> None:
    body = ticket_task.read_text().replace("rungs:\n", "rungs:\n  - {rung: few_shot, k: 2, selection: fixed}\n")
    ticket_task.write_text(body)
    view = as_json(str(ticket_task), "--rung", "few_shot")
    (shown,) = view["prompts"]
    turns = shown["messages"]
    assert [m["role"] for m in turns] == ["system", "user", "assistant", "user", "assistant", "user"]
    demos = [turns[1], turns[3]]
    assert all(d["content"] in TRAIN_TEXTS for d in demos)
    assert turns[-1]["content"] == TICKETS[1][0]  # the first test example
    assert view["options"]["k"] == 2


def test_a_generating_rung_shows_the_generated_text(ticket_task: Path) -> None:
    view = as_json(str(ticket_task), "--rung", "gen")
    assert view["mode"] == "generate" and isinstance(view["answer"], str)


def test_an_unknown_example_is_one_line_naming_the_option_and_some_ids(ticket_task: Path) -> None:
    result = invoke(str(ticket_task), "--rung", "zero_shot", "--example", "nope")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert "--example" in message and "nope" in message and "r1" in message


def test_a_markup_looking_input_prints_literally(tmp_path: Path, tiny_model_dir: Path) -> None:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(tmp_path / "train.jsonl", rows[0::2])
    tricky = [{"id": "t1", "text": "[bold red]refund[/] [link=x]me[/link]", "label": "billing"}]
    write_jsonl(tmp_path / "test.jsonl", tricky)
    (tmp_path / "task.yaml").write_text(
        f"name: tickets\nmodel: {tiny_model_dir}\ninstruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\nrungs:\n  - {rung: zero_shot, calibrate: off}\n",
        encoding="utf-8",
    )
    result = invoke(str(tmp_path / "task.yaml"), "--rung", "zero_shot")
    assert result.exit_code == 0, result.output
    assert "[bold red]refund[/] [link=x]me[/link]" in result.stdout
    assert "tokens" in result.stdout and "Route the ticket." in result.stdout
