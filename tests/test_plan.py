"""`advisor assess --plan`: a calibrated estimate per rung before any work, compared after a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli import main


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
