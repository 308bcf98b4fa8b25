"""The regression gate: exit codes, significance, JUnit XML and Markdown, on hand-built assessments."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.decision.assessment import Assessment
from tests.advisor.decision.test_decide import answers, assessment, rung


def write(path: Path, built: Assessment) -> Path:
    path.write_text(built.model_dump_json())
    return path


def gate(*args: str):
    return CliRunner().invoke(main, ["gate", *args])


def baseline_and(tmp_path: Path, lora_now: np.ndarray, **changes: float) -> tuple[Path, Path]:
    zero, lora = answers(0.5, 1), answers(0.85, 2)
    before = assessment(rung("zero_shot", 0, zero), rung("lora", 3, lora, forgetting=-0.01))
    after = assessment(
        rung("zero_shot", 0, zero),
        rung("lora", 3, lora_now, p95=changes.get("p95", 0.2), per_1k=changes.get("per_1k", 0.01)),
    )
    return write(tmp_path / "before.json", before), write(tmp_path / "after.json", after)


def test_an_unchanged_run_passes_with_exit_0(tmp_path: Path) -> None:
    before, after = baseline_and(tmp_path, answers(0.85, 2))
    result = gate(str(after), "--baseline", str(before))
    assert result.exit_code == 0, result.output
    assert "checks passed" in result.output and "FAIL" not in result.output


def test_a_worse_model_fails_with_a_table_junit_and_markdown(tmp_path: Path) -> None:
    worse = answers(0.85, 2).copy()
    worse[:40] = False  # a deliberately worse adapter: 40 more wrong answers of 200
    before, after = baseline_and(tmp_path, worse)
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    result = gate(str(after), "--baseline", str(before), "--junit", str(junit), "--markdown", str(markdown))
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "lora" in result.output
    suite = ElementTree.parse(junit).getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert "lora.accuracy" in cases and "zero_shot.accuracy" in cases and "lora.p95_latency_s" in cases
    assert cases["lora.accuracy"].find("failure") is not None and cases["zero_shot.accuracy"].find("failure") is None
    assert int(suite.get("failures") or 0) == sum(c.find("failure") is not None for c in cases.values())
    text = markdown.read_text()
    assert text.startswith("### Ladder gate: failed") and "❌" in text and "lora" in text


def test_a_drop_past_the_limit_that_is_not_significant_passes_unless_strict(tmp_path: Path) -> None:
    noisy = answers(0.85, 2).copy()
    noisy[np.flatnonzero(noisy)[:4]] = False  # 4 answers lost, none gained: McNemar p = 0.125
    before, after = baseline_and(tmp_path, noisy)
    relaxed = gate(str(after), "--baseline", str(before), "--max-drop", "0.005")
    assert relaxed.exit_code == 0, relaxed.output
    assert "not significant" in relaxed.output
    strict = gate(str(after), "--baseline", str(before), "--max-drop", "0.005", "--strict")
    assert strict.exit_code == 1


def test_latency_and_cost_rises_fail_past_their_limits(tmp_path: Path) -> None:
    before, after = baseline_and(tmp_path, answers(0.85, 2), p95=0.5, per_1k=0.012)
    result = gate(str(after), "--baseline", str(before), "--max-latency-rise", "0.5", "--max-cost-rise", "0.5")
    assert result.exit_code == 1 and "p95_latency_s" in result.output
    junit = tmp_path / "j.xml"
    gate(str(after), "--baseline", str(before), "--junit", str(junit))
    failing = [
        c.get("name") for c in ElementTree.parse(junit).getroot().iter("testcase") if c.find("failure") is not None
    ]
    assert failing == ["lora.p95_latency_s"]  # the cost rose 20%, under the 50% default


def test_a_missing_rung_and_forgetting_fail(tmp_path: Path) -> None:
    zero, lora = answers(0.5, 1), answers(0.85, 2)
    before = write(tmp_path / "b.json", assessment(rung("zero_shot", 0, zero), rung("lora", 3, lora)))
    after = write(tmp_path / "a.json", assessment(rung("zero_shot", 0, zero)))
    assert gate(str(after), "--baseline", str(before)).exit_code == 1
    forgot = write(tmp_path / "f.json", assessment(rung("zero_shot", 0, zero), rung("lora", 3, lora, forgetting=-0.2)))
    result = gate(str(forgot), "--baseline", str(before), "--max-forgetting", "0.05")
    assert result.exit_code == 1 and "forgetting" in result.output


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    before, after = baseline_and(tmp_path, answers(0.85, 2))
    missing = gate(str(after), "--baseline", str(tmp_path / "none.json"))
    assert missing.exit_code == 2 and "file not found" in missing.stderr
    bad = gate(str(after), "--baseline", str(before), "--max-drop", "5")
    assert bad.exit_code == 2 and "max_drop" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    (tmp_path / "junk.json").write_text("[1, 2")
    junk = gate(str(tmp_path / "junk.json"), "--baseline", str(before))
    assert junk.exit_code == 2 and "not an Assessment" in junk.stderr


def test_assess_with_a_baseline_gates_right_after(ticket_task: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    assert CliRunner().invoke(main, ["assess", str(ticket_task), "-o", str(first)]).exit_code == 0
    again = CliRunner().invoke(
        main, ["assess", str(ticket_task), "-o", str(tmp_path / "b.json"), "--baseline", str(first)]
    )
    assert again.exit_code == 0, again.output
    assert "Gate:" in again.output
