"""FSDP2 training under a real `torchrun --nproc_per_node 2` (gloo, CPU), configured by the shipped accelerate file.

The environment is what `accelerate launch --config_file examples/accelerate/fsdp.yaml` gives each rank
(accelerate's own conversion). Sharded, the launch must train what one process trains: the same losses
step by step and the same saved weights, gathered whole; a killed rank must fail the launch, and the next
launch must resume from the ranks' checkpoint shards to the same weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open
from safetensors.torch import load_file

from tests.conftest import write_ticket_task
from tests.launches import (
    ROOT,
    assert_close,
    finished,
    kill_rank_at_checkpoint,
    launch,
    launch_env,
    start,
    training,
)
from tests.pausing import running_beside


def _fsdp_settings() -> dict[str, str]:
    """The FSDP settings `accelerate launch` puts into each rank's environment from examples/accelerate/fsdp.yaml."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    config = str(ROOT / "examples" / "accelerate" / "fsdp.yaml")
    args = launch_command_parser().parse_args(["--config_file", config, "--num_processes", "2", "worker.py"])
    args, _, _ = _validate_launch_command(args)
    variables = prepare_multi_gpu_env(args)
    return {k: v for k, v in variables.items() if k.startswith(("FSDP_", "ACCELERATE_"))}


def _metadata(path: Path) -> dict[str, Any]:
    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata())


def _losses(path: Path) -> list[float]:
    return json.loads(_metadata(path)["losses"])  # type: ignore[no-any-return]


def _same_training(sharded: Path, single: Path) -> None:
    one, two = _losses(single), _losses(sharded)
    assert len(one) == len(two) >= 5
    assert max(abs(a - b) for a, b in zip(one[:5], two[:5], strict=True)) < 1e-5
    reference = load_file(str(single))
    assert_close(load_file(str(sharded)), reference)


@pytest.mark.slow  # a one-process run beside a sharded launch of two real ranks
def test_lora_sharded_over_two_ranks_trains_and_saves_the_adapter_of_one_process(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    fsdp = launch_env(_fsdp_settings())
    assert fsdp["ACCELERATE_USE_FSDP"] == "true" and fsdp["FSDP_VERSION"] == "2"
    single = training(tmp_path, tiny_model_dir, "single", 1)
    with running_beside(single, launch_env(), tmp_path / "single.log"):
        finished(start(training(tmp_path, tiny_model_dir, "fsdp", 2), fsdp))
    reference = load_file(str(tmp_path / "single" / "weights.safetensors"))
    moved = [float(reference[n].abs().max()) for n in reference if "lora_B" in n]  # LoRA's B starts at zero
    assert moved and min(moved) > 0  # so equal weights mean equal training, not two untouched adapters
    _same_training(tmp_path / "fsdp" / "weights.safetensors", tmp_path / "single" / "weights.safetensors")
    shards = sorted(p.name for p in (tmp_path / "fsdp" / "ckpt").glob("step-*/*.safetensors"))
    assert shards == ["rank-0-of-2.safetensors", "rank-1-of-2.safetensors"]  # the checkpoint was never gathered


@pytest.mark.slow  # a one-process run beside a sharded launch whose rank is killed, then the resumed launch
def test_full_fine_tuning_sharded_resumes_after_a_killed_rank_to_the_weights_of_one_process(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    fsdp = launch_env(_fsdp_settings())
    single = training(tmp_path, tiny_model_dir, "single", 1, "full")
    folder = tmp_path / "killed"
    with running_beside(single, launch_env(), tmp_path / "single.log"):
        kill_rank_at_checkpoint(training(tmp_path, tiny_model_dir, "killed", 2, "full"), fsdp, folder)
    finished(start(training(tmp_path, tiny_model_dir, "killed", 2, "full"), fsdp))
    assert int(_metadata(folder / "weights.safetensors")["resumed_from"]) > 0
    _same_training(folder / "weights.safetensors", tmp_path / "single" / "weights.safetensors")


def _qlora_task(folder: Path, model: Path) -> Path:
    folder.mkdir()
    task = write_ticket_task(folder, model)
    text = task.read_text(encoding="utf-8").replace(
        "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
        "  - {rung: qlora, r: 4, epochs: 2, search: false, checkpoint_every: 2}\n",
    )
    task.write_text(text, encoding="utf-8")
    return task


@pytest.mark.slow  # `advisor train` in one process beside the same command under a sharded launch of two ranks
def test_advisor_train_qlora_under_an_fsdp_launch_exports_the_adapter_of_one_process(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """The whole path: the task's trainer, the 4-bit base stored in the compute dtype so FSDP can shard it, the
    artifact saved from the gathered state by rank 0, and the export."""
    one, two = _qlora_task(tmp_path / "one", tiny_model_dir), _qlora_task(tmp_path / "two", tiny_model_dir)

    def command(task: Path) -> list[str]:
        return ["-m", "advisor.cli.main", "train", str(task), "--rung", "qlora", "-o", str(task.parent / "out")]

    with running_beside([sys.executable, *command(one)], launch_env(), tmp_path / "one.log"):
        finished(start(launch(command(two), 2), launch_env(_fsdp_settings())))
    exported = "adapter_model.safetensors"
    reference = load_file(str(one.parent / "out" / exported))
    assert min(float(reference[n].abs().max()) for n in reference if "lora_B" in n) > 0  # it trained
    assert_close(load_file(str(two.parent / "out" / exported)), reference)
    cards = [json.loads((task.parent / "out" / "card.json").read_text(encoding="utf-8")) for task in (one, two)]
    assert cards[1]["training"]["steps"] == cards[0]["training"]["steps"] > 0
    assert cards[1]["total_parameters"] == cards[0]["total_parameters"]  # 4-bit weights counted before sharding
