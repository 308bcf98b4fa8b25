"""`advisor assess --plan`: a calibrated estimate per rung before any work, compared after a real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from advisor.cli.main import main
from advisor.decision.assessment import RungResult, TokenSummary, TrainingSummary
from advisor.decision.costs import price_rungs, serving_per_1k
from advisor.measure.plan import ModelRates, prompt_sizes
from advisor.measure.plan_store import PLAN_VERSION, Plan, PlanRates, RungEstimate, check_plan, load_plan, save_plan
from advisor.report.plan import plan_check_table, ratio_text
from advisor.task.spec import CostSection
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.pricing.prices import load_prices
from harness.rungs import PromptSizes, RequestShape
from harness.types import Example
from tests.advisor.decision.test_decide import assessment, rung
from tests.conftest import TICKETS


@pytest.mark.slow
def test_plan_prints_estimates_then_a_real_run_compares_them(ticket_task: Path, tmp_path: Path) -> None:
    body = ticket_task.read_text().replace(
        "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
        "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n"
        "  - {rung: lora, r: 2, epochs: 1, batch_tokens: 256, max_batch_size: 4, search: false}\n",
    )
    ticket_task.write_text(body)
    planned = CliRunner().invoke(main, ["assess", str(ticket_task), "--plan"])
    assert planned.exit_code == 0, planned.output
    assert "Plan: expected time and cost per rung" in planned.output and "lora" in planned.output
    plan_file = ticket_task.parent / ".advisor" / "plans" / "tickets.plan.json"
    plan = json.loads(plan_file.read_text())
    assert [r["name"] for r in plan["rungs"]] == ["zero_shot", "gen", "lora"]
    lora = plan["rungs"][2]
    assert lora["training_s"] > 0 and lora["total_s"] > lora["training_s"] and plan["rates"]["training_tokens_per_s"]
    assert not list((ticket_task.parent / ".advisor").glob("adapters/*"))  # the plan trained nothing
    out = tmp_path / "run.json"
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Plan against measurement" in result.output
    checks = json.loads(out.read_text())["plan_checks"]
    assert [c["rung"] for c in checks] == ["zero_shot", "gen", "lora"]
    assert all(c["measured_s"] > 0 and c["time_ratio"] > 0 for c in checks)


def test_a_changed_task_gets_a_fresh_plan_and_only_computed_work_is_compared(ticket_task: Path, tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["assess", str(ticket_task), "--plan"]).exit_code == 0
    plan_file = ticket_task.parent / ".advisor" / "plans" / "tickets.plan.json"
    stale = json.loads(plan_file.read_text())["key"]
    ticket_task.write_text(ticket_task.read_text() + "seed: 3\n")
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "calibrating this machine for the plan" in result.output and "plan: about" in result.output
    assert json.loads(plan_file.read_text())["key"] != stale  # the stale plan was not used
    checks = json.loads((tmp_path / "r.json").read_text())["plan_checks"]
    assert [c["rung"] for c in checks] == ["zero_shot", "gen"] and all("test" in c["phases"] for c in checks)
    again = CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(tmp_path / "again.json")])
    assert again.exit_code == 0 and "calibrating" not in again.output  # nothing computed: no plan needed
    assert json.loads((tmp_path / "again.json").read_text())["plan_checks"] == []  # no cached rung is "0.00x"


def _measured(name: str, **update: Any) -> RungResult:
    """A rung as a run reports it: 24 answers, each timed at 0.02 s in its batch (50 requests/s)."""
    base = rung(name, 0, np.ones(24, dtype=bool))
    records = [r.model_copy(update={"latency_s": 0.02}) for r in base.records]
    latency = base.latency.model_copy(update={"batched_examples_per_s": 50.0})
    return base.model_copy(update={"records": records, "latency": latency, **update})


def _training(trained_now: bool) -> TrainingSummary:
    return TrainingSummary(
        seconds=30.0,
        peak_rss_mb=100.0,
        trainable_parameters=10,
        trainable_share=0.01,
        epochs_run=1.0,
        best_epoch=1.0,
        useful_tokens=1000,
        useful_tokens_per_s=30.0,
        train_losses=[1.0],
        validation_losses=[1.0],
        artifact="a",
        trained_now=trained_now,
    )


PLAN = Plan(
    version=PLAN_VERSION,
    key="k",
    rates=PlanRates(
        scoring_tokens_per_s=1000.0,
        single_request_s_per_token=1e-3,
        generation_s_per_token=0.01,
        embedding_s_per_text=0.0,
        training_tokens_per_s={},
    ),
    calibration_s=1.0,
    rungs=[
        RungEstimate(
            name=n,
            prompt_tokens=80.0,
            choosing_s=0.0,
            training_s=t,
            evaluation_s=2.0,
            latency_s=0.5,
            probes_s=None,
            total_s=2.5 + (t or 0.0),
            p50_s=0.1,
            per_1k=0.001,
            training_cost=None,
        )
        for n, t in (("cached", None), ("half", None), ("loaded", 40.0), ("trained", 40.0))
    ],
)


def test_the_plan_check_compares_only_work_this_run_computed() -> None:
    """A rung read from the store gets no ratio ("from the store", never 0.00x); a stored adapter loaded is no
    training; a rung that answered half its test examples is compared with half the planned evaluation."""
    results = [
        _measured("cached", computed=0, reused=24, phases={}),
        _measured("half", computed=12, reused=12, phases={"prepare": 0.0, "test": 1.0}),
        _measured("loaded", step=3, tuned=True, training=_training(False), phases={"training": 0.3, "test": 2.0}),
        _measured("trained", step=3, tuned=True, training=_training(True), phases={"training": 44.0, "test": 2.2}),
    ]
    checks = {c.rung: c for c in check_plan(PLAN, results)}
    assert list(checks) == ["half", "loaded", "trained"]
    assert checks["half"].planned_s == pytest.approx(1.0) and checks["half"].time_ratio == pytest.approx(1.0)
    assert checks["loaded"].phases == ["test"] and checks["loaded"].time_ratio == pytest.approx(1.0)
    assert checks["trained"].phases == ["training", "test"] and checks["trained"].time_ratio == pytest.approx(1.1)
    table = plan_check_table(assessment(*results).model_copy(update={"plan_checks": list(checks.values())}))
    assert table is not None
    console = Console(width=200, record=True)
    console.print(table)
    rows = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.count("│") > 3}
    assert "from the store" in rows["cached"] and "x" not in rows["cached"].replace("0x", "")
    assert "1.00x" in rows["half"] and "1.00x" in rows["loaded"] and "1.10x" in rows["trained"]
    assert ratio_text(0.0031) == "0.0031x"  # a real ratio never reads 0.00x


@pytest.mark.parametrize("hosting", ["self_hosted", "api"])
def test_the_plan_prices_a_request_as_the_measurement_does(hosting: str) -> None:
    """On a constructed case where the run measures exactly the planned rate and tokens (a rung that embeds
    each question: its embedding is in the run's timing), the plan's $ per 1k equal the measured ones."""
    rates = ModelRates(
        sizes=PromptSizes(zero=80, tuned=60, demo=30), answer_tokens=6, scoring=4000.0, generation=0.01, single=1e-3
    )
    shape = RequestShape(prompt_tokens=140, embeds=True)
    costs = CostSection(hosting=hosting)  # type: ignore[arg-type]
    prices = load_prices(None)
    request_s = rates.request_seconds(shape, embed_s=0.015)
    assert request_s == pytest.approx(140 / 4000 + 0.015)
    tokens = TokenSummary(prompt_mean=140, completion_mean=3)
    planned = serving_per_1k(costs, prices, "cpu", 1 / request_s, tokens, tuned=False)
    run = _measured("rag", tokens=tokens)
    run = run.model_copy(
        update={
            "records": [r.model_copy(update={"latency_s": request_s}) for r in run.records],
            "latency": run.latency.model_copy(update={"batched_examples_per_s": 1 / request_s}),
        }
    )
    (measured,) = price_rungs([run], costs, prices, "cpu")
    assert measured.cost is not None and planned == pytest.approx(measured.cost.per_1k, rel=1e-12)


def test_planned_prompt_sizes_count_the_demonstrations_template_tokens(tiny_tokenizer: Any) -> None:
    """A few-shot prompt's planned size (the zero-shot prompt and k demonstrations) is the real prompt's, chat
    turns around each demonstration included (they were left out, and the plan's $ with them)."""
    labels = ("access", "billing", "technical")
    prompts = PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Route the ticket.", labels=labels))
    examples = [Example(f"r{i}", text, label) for i, (text, label) in enumerate(TICKETS * 2)]
    train, test = examples[0::2], examples[1::2]
    sizes = prompt_sizes(prompts, train, test)
    for k in (1, 2, 4):
        real = [len(prompts.encode(q, train[i : i + k])) for i, q in enumerate(test[: len(train) - k])]
        assert sizes.zero + k * sizes.demo == pytest.approx(sum(real) / len(real), rel=0.05), k


def test_a_stored_plan_reads_back_and_is_written_as_it_was(tmp_path: Path) -> None:
    """The plan file's content is what the untyped plan wrote (a local rung has no `endpoint` key, a remote one
    has it); a plan made for another key, or by another plan version, is not used."""
    local = {"name": "zero_shot", "prompt_tokens": 80.5, "choosing_s": 0.0, "training_s": None, "evaluation_s": 2.0}
    local |= {"latency_s": 0.5, "probes_s": None, "total_s": 2.5, "p50_s": 0.1, "per_1k": 0.001, "training_cost": None}
    remote = {"name": "remote", "endpoint": "api", "prompt_tokens": 80.5, "choosing_s": 0.0, "evaluation_s": 0.0}
    remote |= {"latency_s": 0.0, "training_s": None, "probes_s": None, "total_s": 0.0, "p50_s": None, "per_1k": 0.09}
    remote |= {"training_cost": None}
    rates = {"scoring_tokens_per_s": None, "single_request_s_per_token": 1e-05, "generation_s_per_token": 0.01}
    rates |= {"embedding_s_per_text": 0.0, "training_tokens_per_s": {"lora": 1234.5}}
    stored = {"version": PLAN_VERSION, "key": "k", "rates": rates, "calibration_s": 3.25, "rungs": [local, remote]}
    path = tmp_path / "t.plan.json"
    path.write_text(json.dumps(stored, indent=2))
    plan = load_plan(path, "k")
    assert plan is not None and plan.rungs[0].endpoint is None and plan.rungs[1].endpoint == "api"
    assert plan.total_s() == 2.5
    save_plan(plan, tmp_path / "again.json")
    again = (tmp_path / "again.json").read_text()
    assert json.loads(again) == stored
    assert list(json.loads(again)["rungs"][0]) == list(local)  # a local rung's keys, in their order
    assert load_plan(path, "another key") is None
    path.write_text(json.dumps(stored | {"version": PLAN_VERSION - 1}, indent=2))
    assert load_plan(path, "k") is None


def test_plan_json_prints_what_the_plan_file_holds(ticket_task: Path) -> None:
    result = CliRunner().invoke(main, ["assess", str(ticket_task), "--plan", "--json"])
    assert result.exit_code == 0, result.output
    plan_file = ticket_task.parent / ".advisor" / "plans" / "tickets.plan.json"
    assert result.stdout.strip() == plan_file.read_text().strip() and "Plan written to" in result.stderr
