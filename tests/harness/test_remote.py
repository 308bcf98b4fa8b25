"""Remote rungs without a server: reading replies, the task file's endpoints, checks before any request,
$ at the endpoint's price, the reports, the plan and the gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.decision.assessment import EndpointSummary
from advisor.decision.costs import price_rungs
from advisor.measure.endpoints import check_endpoints, resolve_endpoints
from advisor.report.markdown import render_markdown
from advisor.task.rung_plan import plan_rungs
from advisor.task.spec import CostSection, load_task
from harness.errors import InputError
from harness.pricing.prices import load_prices
from harness.remote.endpoint import is_loopback
from harness.remote.scoring import choose_label, label_scores, read_chat, read_echo
from tests.advisor.decision.test_decide import answers, assessment, rung

LABELS = ["billing", "technical", "access"]


def echo_body(prompt: str, pieces: dict[str, list[tuple[str, float]]]) -> dict[str, object]:
    """A /completions echo reply: the prompt as two tokens, then each label's tokens with their logprobs."""
    choices = []
    for index, (label, tokens) in enumerate(pieces.items()):
        texts = [prompt[:3], prompt[3:], *(t for t, _ in tokens)]
        offsets, at = [], 0
        for text in texts:
            offsets.append(at)
            at += len(text)
        logprobs = [None, -1.0, *(lp for _, lp in tokens)]
        choices.append(
            {
                "index": index,
                "text": prompt + label,
                "logprobs": {"tokens": texts, "token_logprobs": logprobs, "text_offset": offsets},
            }
        )
    return {"choices": choices, "usage": {"prompt_tokens": 12, "completion_tokens": 0}}


def test_echo_sums_each_labels_own_token_logprobs_after_the_prompt() -> None:
    prompt = "Route: hello\n"
    body = echo_body(
        prompt,
        {"billing": [("bill", -0.5), ("ing", -0.25)], "technical": [("technical", -0.5)], "access": [("acc", -3.0)]},
    )
    output = read_echo(body, prompt, LABELS)
    # billing -0.75 beats technical -0.5? no: technical is likelier; the sums decide, not the first token
    assert output.text == "technical" and output.detail["logprobs"] == {
        "billing": -0.75,
        "technical": -0.5,
        "access": -3.0,
    }
    assert output.prompt_tokens == 2 and output.completion_tokens == 1 and output.timed
    assert output.detail["billed_tokens"] == 12
    with pytest.raises(ValueError):
        read_echo({"choices": body["choices"][:2]}, prompt, LABELS)  # a label missing is malformed, not a guess


def test_first_token_logprobs_sum_each_labels_candidates_and_break_ties_by_the_written_answer() -> None:
    candidates = {"bill": math.log(0.5), " billing": math.log(0.2), "tech": math.log(0.1), "Acc": math.log(0.05)}
    scores = label_scores(candidates, LABELS)
    assert scores["billing"] == pytest.approx(math.log(0.7)) and scores["access"] == pytest.approx(math.log(0.05))
    tied = label_scores({"bill": -0.1}, ["bill", "billing"])
    assert choose_label(tied, "billing", ["bill", "billing"]) == "billing"
    assert choose_label(tied, "something else", ["bill", "billing"]) == "bill"
    assert choose_label(label_scores({"xyz": -0.1}, LABELS), "access", LABELS) is None

    def chat(top: list[tuple[str, float]], text: str) -> dict[str, object]:
        first = {
            "token": top[0][0],
            "logprob": top[0][1],
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top],
        }
        return {
            "choices": [{"message": {"content": text}, "logprobs": {"content": [first]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 3},
        }

    output = read_chat(chat([("tech", -0.2), ("bill", -2.0)], "technical"), LABELS, use_logprobs=True)
    assert output.text == "technical" and (output.prompt_tokens, output.completion_tokens) == (30, 3)
    unmatched = read_chat(chat([("Sure", -0.1)], "Sure, it is billing"), LABELS, use_logprobs=True)
    assert unmatched.text == "Sure, it is billing" and unmatched.detail["first_token_names_no_label"]
    with pytest.raises(ValueError):
        read_chat({"choices": [{"message": {"content": "x"}}]}, LABELS, use_logprobs=True)


def test_endpoint_and_scoring_are_where_a_rung_runs_and_only_prompting_rungs_move() -> None:
    planned = plan_rungs(
        [{"rung": "few_shot", "k": [2, 4], "endpoint": "hosted", "scoring": "logprobs"}, "zero_shot"],
        "t",
        None,
        ["hosted"],
    )
    assert [(p.name, p.endpoint, p.scoring) for p in planned] == [
        ("few_shot_k2", "hosted", "logprobs"),
        ("few_shot_k4", "hosted", "logprobs"),
        ("zero_shot", None, "auto"),
    ]
    assert "endpoint" not in planned[0].config.model_dump()  # local results keep their keys
    cases = [
        ({"rung": "zero_shot", "endpoint": "nowhere"}, "unknown endpoint 'nowhere' (the task's endpoints: hosted)"),
        ({"rung": "lora", "endpoint": "hosted"}, "rung 'lora' changes the model's weights here"),
        ({"rung": "zero_shot", "scoring": "echo"}, "only a rung with an endpoint chooses"),
        (
            {"rung": "zero_shot", "endpoint": "hosted", "scoring": "magic"},
            "expected one of auto, echo, logprobs, generate",
        ),
    ]
    for entry, message in cases:
        with pytest.raises(InputError, match="rungs\\[0\\]") as error:
            plan_rungs([entry], "t", None, ["hosted"])
        assert message in str(error.value)


def write_task(folder: Path, endpoints: str, extra: str = "") -> Path:
    (folder / "test.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    task = folder / "task.yaml"
    rungs = "rungs:\n  - {rung: zero_shot, endpoint: api}\n"
    task.write_text(f"name: t\ndata: {{test: test.jsonl}}\nendpoints:\n{endpoints}\n{rungs}{extra}")
    return task


def test_the_task_files_endpoints_are_validated_with_one_line(tmp_path: Path) -> None:
    local = "  api: {base_url: 'http://127.0.0.1:1/v1', model: m"
    bad = {
        "  api: {base_url: ftp://x, model: m}": "endpoints.api.base_url: String should match pattern",
        f"{local}, price: gpt-9}}": "endpoints.api.price: pricing.api_models: unknown API model 'gpt-9'",
        f"{local}, api_key_env: 'my key'}}": "endpoints.api.api_key_env",
        f"{local}, temperature: 1}}": "endpoints.api.temperature: unknown field",
    }
    for text, message in bad.items():
        with pytest.raises(InputError) as error:
            load_task(write_task(tmp_path, text))
        assert message in str(error.value) and str(tmp_path) in str(error.value)


def test_a_missing_key_and_an_outside_host_are_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LADDER_TEST_KEY", raising=False)
    task = load_task(
        write_task(
            tmp_path, "  api: {base_url: 'https://api.ladder.invalid/v1', model: m, api_key_env: LADDER_TEST_KEY}"
        )
    )
    planned = plan_rungs(task.spec.rungs, "t", None, task.spec.endpoints)
    endpoints = resolve_endpoints(task.spec, planned)
    with pytest.raises(InputError, match="environment variable LADDER_TEST_KEY is not set"):
        check_endpoints(endpoints, task.spec)
    monkeypatch.setenv("LADDER_TEST_KEY", "sk-secret-value")
    check_endpoints(endpoints, task.spec)
    in_house = "facts: {data_must_stay_in_house: true}\n"
    task = load_task(write_task(tmp_path, "  api: {base_url: 'https://api.ladder.invalid/v1', model: m}", in_house))
    with pytest.raises(InputError, match=r"host 'api\.ladder\.invalid' is not local") as error:
        check_endpoints(resolve_endpoints(task.spec, planned), task.spec)
    assert "sk-secret-value" not in str(error.value)
    listed = "facts: {data_must_stay_in_house: true, in_house_hosts: [API.ladder.invalid]}\n"
    task = load_task(write_task(tmp_path, "  api: {base_url: 'https://api.ladder.invalid/v1', model: m}", listed))
    check_endpoints(resolve_endpoints(task.spec, planned), task.spec)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("10.0.0.1")


def remote_rung(name: str, correct: np.ndarray, **fine_tuning: object) -> object:
    result = rung(name, 0, correct)
    endpoint = EndpointSummary(
        name="hosted",
        base_url="https://api.ladder.invalid/v1",
        model="ft:some-model",
        in_house=False,
        scoring="logprobs",
        scoring_text="first-token logprobs",
        max_concurrency=4,
        requests_sent=200,
        input_per_million=2.0,
        output_per_million=8.0,
        price_source="task file",
        **fine_tuning,
    )
    return result.model_copy(update={"endpoint": endpoint, "scoring": "logprobs"})


def test_a_remote_rung_is_priced_at_its_endpoints_price_with_its_hosted_training(tmp_path: Path) -> None:
    prices = load_prices(None)
    service = next(iter(prices.hosted_fine_tuning))
    hosted = remote_rung(
        "hosted", answers(0.8, 1), fine_tuning_service=service, fine_tuning_epochs=3, fine_tuning_tokens=100_000
    )
    local = rung("zero_shot", 0, answers(0.7, 2)).model_copy(update={"scoring": "likelihood"})
    priced = price_rungs([local, hosted], CostSection(), prices, "cpu")
    cost = priced[1].cost
    assert cost is not None and cost.hosting == "endpoint"
    assert cost.per_1k == pytest.approx(1000 * (10 * 2.0 + 1 * 8.0) / 1e6)  # 10 prompt, 1 completion tokens
    rate = prices.hosted_fine_tuning[service].training_per_million
    assert cost.one_off_training() == pytest.approx(100_000 * 3 / 1e6 * rate)
    assert priced[0].cost is not None and priced[0].cost.hosting == "self_hosted"
    text = render_markdown(assessment(*priced))
    assert "Where each rung runs, and what it costs there" in text
    assert "endpoint hosted (ft:some-model, hosted)" in text and "| zero_shot | local |" in text
    assert "read in different ways" in text and "first-token logprobs (chat top_logprobs)" in text


def test_the_gate_checks_a_remote_rung_like_any_other(tmp_path: Path) -> None:
    prices = load_prices(None)
    before = assessment(*price_rungs([remote_rung("hosted", answers(0.85, 2))], CostSection(), prices, "cpu"))
    worse = answers(0.85, 2).copy()
    worse[:40] = False
    after = assessment(*price_rungs([remote_rung("hosted", worse)], CostSection(), prices, "cpu"))
    (tmp_path / "before.json").write_text(before.model_dump_json())
    (tmp_path / "after.json").write_text(after.model_dump_json())
    result = CliRunner().invoke(
        main, ["gate", str(tmp_path / "after.json"), "--baseline", str(tmp_path / "before.json")]
    )
    assert result.exit_code == 1 and "hosted" in result.output


def test_the_plan_prices_a_remote_rung_from_its_tokens_and_sends_nothing(ticket_task: Path) -> None:
    text = ticket_task.read_text().replace(
        "rungs:\n",
        "endpoints:\n  api: {base_url: 'http://127.0.0.1:9/v1', model: m, api_key_env: LADDER_UNSET_KEY, "
        "price: {input_per_million: 1000, output_per_million: 1000}}\n"
        "rungs:\n  - {rung: zero_shot, name: remote, endpoint: api}\n",
    )
    ticket_task.write_text(text)
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "--plan", "--rungs", "remote,zero_shot"])
    assert result.exit_code == 0, result.output  # no key is needed: nothing is sent
    plan = json.loads((ticket_task.parent / ".advisor" / "plans" / "tickets.plan.json").read_text())
    remote = next(r for r in plan["rungs"] if r["name"] == "remote")
    local = next(r for r in plan["rungs"] if r["name"] == "zero_shot")
    assert remote["endpoint"] == "api" and remote["p50_s"] is None and remote["training_cost"] is None
    assert remote["prompt_tokens"] == local["prompt_tokens"]  # the same prompt, sent elsewhere
    # $1 per 1000 tokens in and out: $ per 1k requests = prompt tokens + the labels' mean tokens (a few each)
    assert 1 <= remote["per_1k"] - remote["prompt_tokens"] <= 8
    assert "+ endpoint" in result.output
