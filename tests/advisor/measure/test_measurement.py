"""Measurement end to end on the tiny model: every task type's metrics, costs, paired comparisons, forgetting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from harness.metrics.measurement import Measurement
from harness.metrics.task_metrics import build_columns, estimates
from tests.conftest import AssessedTickets, write_jsonl


def assess(task: Path, out: Path) -> dict:
    result = CliRunner().invoke(main, ["assess", str(task), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def write_task(folder: Path, model: Path, kind: str, rows: list[dict], extra: str = "") -> Path:
    write_jsonl(folder / "train.jsonl", rows[: len(rows) // 2])
    write_jsonl(folder / "test.jsonl", rows[len(rows) // 2 :])
    task = folder / "task.yaml"
    task.write_text(
        f"name: {kind}-task\ntype: {kind}\nmodel: {model}\n"
        "data: {train: train.jsonl, test: test.jsonl, fields: {input: text, target: answer}}\n"
        "rungs: [{rung: zero_shot, max_new_tokens: 6}]\n"
        "evaluation: {latency_sample: 1, bootstrap_resamples: 200}\n" + extra,
        encoding="utf-8",
    )
    return task


def test_extraction_metrics_sum_field_counts_over_examples() -> None:
    scores = [
        {"correct": 1.0, "valid": 1.0, "tp": 2.0, "fp": 0.0, "fn": 0.0},
        {"correct": 0.0, "valid": 1.0, "tp": 1.0, "fp": 2.0, "fn": 1.0},
        {"correct": 0.0, "valid": 0.0, "tp": 0.0, "fp": 0.0, "fn": 3.0},
    ]
    columns = build_columns(["a", "b", "c"], [None, None, None], scores)
    values = {name: e.value for name, e in estimates("extraction", columns, 3, Measurement(resamples=100)).items()}
    assert values["field_f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 4))  # micro: 2TP / (2TP + FP + FN)
    assert values["field_precision"] == pytest.approx(3 / 5) and values["field_recall"] == pytest.approx(3 / 7)
    assert values["json_valid"] == pytest.approx(2 / 3) and values["exact_match"] == pytest.approx(1 / 3)


def test_extraction_task_runs_with_json_targets(tmp_path: Path, tiny_model_dir: Path) -> None:
    rows = [
        {"id": f"e{i}", "text": f"book a table for {n} in {city}", "answer": {"party": n, "city": city}}
        for i, (n, city) in enumerate([(2, "Oslo"), (4, "Rome"), (3, "Lima"), (5, "Kyiv")])
    ]
    data = assess(write_task(tmp_path, tiny_model_dir, "extraction", rows), tmp_path / "run.json")
    rung = data["rungs"][0]
    assert rung["primary_metric"] == "field_f1"
    assert {"field_f1", "field_precision", "field_recall", "exact_match", "json_valid"} <= set(rung["metrics"])
    assert json.loads(rung["records"][0]["target"]) == {"city": "Lima", "party": 3}  # canonical JSON text
    assert rung["records"][0]["scores"]["fn"] == 2 - rung["records"][0]["scores"]["tp"]


def test_generation_task_reports_rouge_chrf_and_embedding_similarity(tmp_path: Path, tiny_model_dir: Path) -> None:
    rows = [
        {"id": f"g{i}", "text": f"Summarise: {t}", "answer": t}
        for i, t in enumerate(["the app crashed", "refund my card", "login is broken", "export fails"])
    ]
    data = assess(write_task(tmp_path, tiny_model_dir, "generation", rows), tmp_path / "run.json")
    rung = data["rungs"][0]
    assert rung["primary_metric"] == "rouge_l"
    for name in ("rouge_l", "chrf", "embedding_similarity", "exact_match"):
        assert 0.0 <= rung["metrics"][name]["value"] <= 1.0 or name == "embedding_similarity"
    assert all("similarity" in r["scores"] and "chrf" in r["scores"] for r in rung["records"])


def test_costs_follow_from_measured_throughput_and_tokens(assessed_tickets: AssessedTickets) -> None:
    data = assessed_tickets.data()
    from harness.pricing.prices import load_prices

    prices = load_prices()
    hardware = prices.gpus[prices.defaults.serving_hardware].per_hour
    api = prices.api_models[prices.defaults.api_model]
    for rung in data["rungs"]:
        cost, rate = rung["cost"], rung["latency"]["batched_examples_per_s"]
        assert cost["per_1k"] == pytest.approx(hardware / (rate * 3600) * 1000)
        tokens = rung["tokens"]
        expected_api = (
            tokens["prompt_mean"] * api.input_per_million + tokens["completion_mean"] * api.output_per_million
        ) / 1000
        assert cost["api_per_1k"] == pytest.approx(expected_api)
        assert cost["monthly"] == pytest.approx(cost["per_1k"] * 100)  # 100,000 requests a month by default
        assert rung["forgetting"] == {**rung["forgetting"], "weights_changed": False}


def test_every_pair_of_rungs_is_compared_on_the_same_examples(assessed_tickets: AssessedTickets) -> None:
    data = assessed_tickets.data()
    (comparison,) = data["comparisons"]
    a, b = data["rungs"]
    assert (comparison["a"], comparison["b"], comparison["metric"]) == (a["name"], b["name"], "accuracy")
    expected = np.mean([r["correct"] for r in a["records"]]) - np.mean([r["correct"] for r in b["records"]])
    assert comparison["difference"] == pytest.approx(expected)
    assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
    assert 0 <= comparison["mcnemar_p_value"] <= 1


@pytest.mark.parametrize(
    "extra,expected",
    [
        ("pricing: {gpus: {H100: {per_hour: -1}}}\n", "pricing.gpus.H100.per_hour: expected a number >= 0"),
        ("costs: {api_model: gpt-4.1-mimi}\n", "costs.api_model: "),
        ("costs: {hosting: cloud}\n", "costs.hosting"),
        ("forgetting: {max_items: 3}\n", "forgetting.max_items"),
        ("constraints: {max_forgetting: 2}\n", "constraints.max_forgetting"),
    ],
)
def test_bad_cost_and_forgetting_settings_are_one_line(ticket_task: Path, extra: str, expected: str) -> None:
    ticket_task.write_text(ticket_task.read_text() + extra)
    result = CliRunner().invoke(main, ["assess", str(ticket_task)])
    assert result.exit_code == 2 and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_leakage_found_by_the_audit_puts_a_warning_on_the_recommendation(ticket_task: Path, tmp_path: Path) -> None:
    folder = ticket_task.parent
    test_rows = (folder / "test.jsonl").read_text().splitlines()
    with (folder / "train.jsonl").open("a") as train:
        train.write(test_rows[0].replace('"id": "r', '"id": "leak') + "\n")  # a test ticket also in train
    data = assess(ticket_task, tmp_path / "run.json")
    assert data["audit"] is not None and not data["audit"]["clean"]
    assert any(f["code"] == "leakage" for f in data["audit"]["findings"])
    assert any("leakage" in w for w in data["recommendation"]["warnings"])
    md = (tmp_path / "run.md").read_text()
    assert "Data audit" in md and "leakage" in md.lower()
