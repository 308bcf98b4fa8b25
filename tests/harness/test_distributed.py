"""Data-parallel training and evaluation under a real `torchrun --nproc_per_node 2` (gloo, CPU).

The launch must give what one process gives: the same weights after the same steps (float
tolerance), the same Assessment (timings aside), and a killed rank must fail the launch cleanly and
leave a checkpoint the next launch resumes from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open
from safetensors.torch import load_file

from tests.assessments import assert_same_measurements
from tests.launches import (
    assert_close,
    finished,
    kill_rank_at_checkpoint,
    launch,
    launch_env,
    start,
    training,
)
from tests.pausing import running_beside


@pytest.mark.slow  # three torchrun launches of two real ranks, one killed: `make test` runs it
def test_two_ranks_train_the_weights_of_one_process_and_resume_after_a_killed_rank(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    single = training(tmp_path, tiny_model_dir, "single", 1)
    with running_beside(single, launch_env(), tmp_path / "single.log"):  # the one-process run beside the launch
        finished(start(training(tmp_path, tiny_model_dir, "ddp", 2), launch_env()))
    reference = load_file(str(tmp_path / "single" / "weights.safetensors"))
    assert_close(load_file(str(tmp_path / "ddp" / "weights.safetensors")), reference)
    moved = [float(reference[n].abs().max()) for n in reference if "lora_B" in n]  # LoRA's B starts at zero
    assert moved and min(moved) > 0  # so equal weights mean equal training, not two untouched adapters

    folder = tmp_path / "killed"
    kill_rank_at_checkpoint(training(tmp_path, tiny_model_dir, "killed", 2), launch_env(), folder)
    finished(start(training(tmp_path, tiny_model_dir, "killed", 2), launch_env()))
    with safe_open(str(folder / "weights.safetensors"), "pt") as handle:
        metadata: dict[str, Any] = handle.metadata()
    assert int(metadata["resumed_from"]) > 0
    assert_close(load_file(str(folder / "weights.safetensors")), reference)


def _assess(task: Path, name: str, ranks: int) -> dict[str, Any]:
    out = task.parent / f"{name}.json"
    args = [
        "-m",
        "advisor.cli.main",
        "assess",
        str(task),
        "--store",
        str(task.parent / name / "store.sqlite"),
        "-o",
        str(out),
    ]
    command = launch(args, ranks) if ranks > 1 else [sys.executable, *args]
    done = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.slow
def test_an_assessment_under_torchrun_equals_the_one_process_assessment(ticket_task: Path) -> None:
    text = (
        ticket_task.read_text(encoding="utf-8")
        .replace(
            "data: {train: train.jsonl, test: test.jsonl}",
            "data: {train: train.jsonl, test: test.jsonl, validation_size: 0.34}",
        )
        .replace(
            "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
            "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n"
            "  - {rung: lora, r: 4, epochs: 2, search: {trials: 2, space: {learning_rate: [1e-3, 3e-3]}}}\n",
        )
    )
    ticket_task.write_text(text, encoding="utf-8")
    one = _assess(ticket_task, "one", 1)
    two = _assess(ticket_task, "two", 2)
    assert two["environment"]["executor"] == "torchrun" and two["environment"]["processes"] == 2
    assert [r["name"] for r in two["rungs"]] == ["zero_shot", "gen", "lora"]
    assert_same_measurements(two, one, ticket_task.parent / "two", ticket_task.parent / "one")


def test_a_deepspeed_launch_is_refused_not_run_as_plain_ddp(ticket_task: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from advisor.cli.main import main

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    result = CliRunner().invoke(main, ["assess", str(ticket_task)])
    assert result.exit_code == 2
    assert "DeepSpeed is not supported" in result.stderr and "examples/accelerate/fsdp.yaml" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (ticket_task.parent / ".advisor" / "store.sqlite").exists()
