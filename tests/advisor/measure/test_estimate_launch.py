"""`advisor estimate` names the way Ladder runs each row (one GPU, DDP, FSDP, FSDP + CPU offload) and its command."""

from __future__ import annotations

import json

import pytest

from advisor.measure.estimate import make_request, run_estimate
from harness.estimates.model_shapes import ModelShape, parse_params, shape_for_params
from harness.estimates.sharding import NODE_GPUS, engine_beside, fsdp_memory_gb, place
from harness.estimates.training_cost import TrainingOption
from harness.estimates.tuning_memory import HEADROOM, MemoryBreakdown, Method, memory_estimate
from tests.advisor.measure.estimate_cli import estimate_output

ONE_GPU = "advisor assess task.yaml"


def launch(config: str, n: int) -> str:
    """The accelerate command of examples/accelerate/<config>.yaml over n processes."""
    return (
        f"accelerate launch --config_file examples/accelerate/{config}.yaml --num_processes {n} "
        "-m advisor.cli.main assess task.yaml"
    )


def _rows(size: str, **fields: object) -> dict[tuple[str, str], TrainingOption]:
    report = run_estimate(make_request(params=size, **fields))
    return {(o.method, o.gpu): o for o in report.training}


@pytest.mark.parametrize(
    ("size", "method", "gpu", "way", "gpus", "alone"),
    [
        ("8B", "lora", "RTX-4090", "one GPU", 1, None),  # 20.6 GiB of a 24 GB card: LoRA trains the engine's weights
        ("8B", "qlora", "L4", "FSDP", 4, None),  # 7.9 GiB of QLoRA beside the engine's 14.9 GiB bf16 base
        ("8B", "full", "H100", "FSDP", 2, None),  # a 67 GiB replica beside the engine's base
        ("8B", "full", "A100-40GB", "FSDP", 7, None),
        # 70B: the step alone fits (the QLoRA paper's one big GPU, FSDP, offload); the engine's 130 GiB base does not
        ("70B", "qlora", "H100", None, None, ("one GPU", 1)),
        ("70B", "qlora", "A100-40GB", None, None, ("FSDP", 2)),
        ("70B", "lora", "H100", None, None, ("FSDP", 3)),
        ("70B", "lora", "RTX-4090", None, None, ("FSDP + CPU offload", 1)),  # 8 x 24 GB cannot shard 155 GiB
        ("70B", "full", "H100", None, None, ("FSDP + CPU offload", 1)),  # 522 GiB of state: more than 8 x 80 GB
        ("70B", "full", "RTX-4090", None, None, None),  # even the offloaded step's working set overflows 24 GB
    ],
)
def test_each_row_names_the_way_its_memory_allows(
    size: str, method: str, gpu: str, way: str | None, gpus: int | None, alone: tuple[str, int] | None
) -> None:
    option = _rows(size)[(method, gpu)]
    assert (option.way, option.gpus) == (way, gpus)
    assert (option.cpu_ram_gb > 0) == (way == "FSDP + CPU offload")
    without = option.without_engine
    assert ((without.way, without.gpus) if without else None) == alone


@pytest.mark.parametrize("size", ["8B", "70B", "405B"])
def test_the_way_is_the_cheapest_that_fits_and_its_gpu_count_the_fewest(size: str) -> None:
    """One GPU exactly when a replica (and the engine's base, where the method does not train over it) fits; FSDP
    over the fewest GPUs that hold a shard beside the engine's base; offload only when no machine of NODE_GPUS
    does, and then with the whole sharded state in CPU RAM."""
    report = run_estimate(make_request(params=size))
    memory_of = {g.name: g.memory_gb for g in report.gpus}
    shape = report.shape
    for option in report.training:
        b, budget = report.memory[option.method], HEADROOM * memory_of[option.gpu]
        replica = b.total_gb + engine_beside(b, report.engine_gb, sharded=False)
        engine = engine_beside(b, report.engine_gb, sharded=True)
        assert (option.way == "one GPU") == (replica <= budget), option
        if option.way == "FSDP":
            assert option.gpus is not None and option.per_gpu_gb is not None and option.per_gpu_gb <= budget
            assert option.per_gpu_gb == fsdp_memory_gb(b, shape, option.gpus, False, engine)
            assert option.gpus == 2 or fsdp_memory_gb(b, shape, option.gpus - 1, False, engine) > budget
        if option.way in ("FSDP + CPU offload", None):
            assert fsdp_memory_gb(b, shape, NODE_GPUS, False, engine) > budget
        if option.way == "FSDP + CPU offload":
            assert option.cpu_ram_gb == pytest.approx(b.weights_gb + b.adapter_gb + b.gradients_gb + b.optimizer_gb)
        if option.way is None:
            assert fsdp_memory_gb(b, shape, 1, True, engine) > budget
            assert (option.without_engine is None) == (place(b, shape, memory_of[option.gpu]) is None)


def test_num_gpus_plans_ddp_where_a_replica_fits_and_fsdp_over_them_where_not() -> None:
    alone, four = _rows("8B", gpus=["A100-40GB"]), _rows("8B", gpus=["A100-40GB"], num_gpus=4)
    lora, full = four[("lora", "A100-40GB")], four[("full", "A100-40GB")]
    assert (lora.way, lora.gpus) == ("DDP", 4)
    assert lora.hours == pytest.approx((alone[("lora", "A100-40GB")].hours or 0) / 4)
    assert lora.cost_usd == pytest.approx(alone[("lora", "A100-40GB")].cost_usd)
    # the fewest GPUs would be 7; four asked for, so its state goes to CPU RAM on four
    assert (full.way, full.gpus) == ("FSDP + CPU offload", 4)
    assert (full.per_gpu_gb or 0) < (alone[("full", "A100-40GB")].per_gpu_gb or 0)


def test_the_terminal_output_names_each_rows_way_and_its_exact_command() -> None:
    text = estimate_output("--params", "8B", "--gpus", "H100,A100-40GB")
    rows = {tuple(c.strip() for c in line.split("│")[1:4]): line for line in text.splitlines() if "│" in line}
    commands = dict(line.strip().split(": ", 1) for line in text.splitlines() if line.strip().startswith("["))
    assert commands == {
        "[1] one GPU": ONE_GPU,
        "[2] FSDP over 2 GPUs": launch("fsdp", 2),
        "[3] FSDP over 7 GPUs": launch("fsdp", 7),
    }
    expected = {
        ("lora", "H100", "one GPU"): "[1]",
        ("qlora", "A100-40GB", "one GPU"): "[1]",
        ("full", "H100", "FSDP"): "[2]",
        ("full", "A100-40GB", "FSDP"): "[3]",
    }
    for key, mark in expected.items():
        assert rows[key].rstrip(" │").endswith(mark), rows[key]
    assert "not supported" not in text and "ZeRO" not in text


def test_a_row_only_the_engines_whole_base_keeps_out_says_so_with_what_the_step_alone_needs() -> None:
    text = " ".join(estimate_output("--params", "70B", "--gpus", "H100,A100-40GB").split())
    assert "not yet (engine)" in text and "[1]" not in text  # nothing to launch
    assert (
        "Not yet in Ladder: lora on H100. The step alone runs FSDP over 3 GPUs at 65.7 GiB each, but Ladder's "
        "engine keeps the whole base (130 GiB) on every GPU beside it: a sharded engine is missing" in text
    )
    assert "Not yet in Ladder: full on H100. The step alone runs FSDP + CPU offload over 1 GPU" in text


def test_json_and_markdown_carry_the_way_and_the_commands() -> None:
    data = json.loads(estimate_output("--params", "8B", "--gpus", "A100-40GB", "--num-gpus", "4", "--json"))
    ways = {(o["method"], o["way"], o["gpus"]) for o in data["training"]}
    assert ways == {("full", "FSDP + CPU offload", 4), ("lora", "DDP", 4), ("qlora", "DDP", 4)}
    assert {launch["command"]: launch["rows"] for launch in data["launches"]} == {
        launch("ddp", 4): ["lora on A100-40GB", "qlora on A100-40GB"],
        launch("fsdp-offload", 4): ["full on A100-40GB"],
    }
    markdown = estimate_output("--params", "8B", "--gpus", "A100-40GB", "--num-gpus", "4", "--markdown")
    assert "| full | A100-40GB | FSDP + CPU offload | 4 |" in markdown
    assert f"- [1] DDP over 4 GPUs: `{launch('ddp', 4)}`" in markdown
    assert f"- [2] FSDP + CPU offload over 4 GPUs: `{launch('fsdp-offload', 4)}`" in markdown


def _anchor(method: Method, seq_len: int, batch_size: int, lora_r: int) -> tuple[ModelShape, MemoryBreakdown]:
    """Llama-2-70B with activation checkpointing, as both recipes train it."""
    shape = shape_for_params(parse_params("70B"))
    b = memory_estimate(
        shape, method, seq_len=seq_len, batch_size=batch_size, gradient_checkpointing=True, lora_r=lora_r
    )
    return shape, b


def test_fsdp_memory_is_near_the_published_70b_recipes() -> None:
    """torchtune's distributed LoRA: 70B on 8 A100s at 27.6 GiB per GPU (activation checkpointing, batch 2 of
    short alpaca rows); peft's FSDP+QLoRA: Llama-2-70B, 2048 x 2 tokens, r=8, 35.6 GB per GPU on two GPUs
    without offload, 19.6 GB with it, so two 24 GB GPUs train it only offloaded."""
    shape, lora = _anchor("lora", 1024, 2, 16)
    assert fsdp_memory_gb(lora, shape, 8, offload=False) == pytest.approx(27.6, rel=0.2)
    shape, qlora = _anchor("qlora", 2048, 2, 8)
    assert fsdp_memory_gb(qlora, shape, 2, offload=False) == pytest.approx(35.6, rel=0.25)
    # offloaded, the estimate leaves out what the recipe's 19.6 GB also holds (allocator reserve, dequantised
    # copies, LoRA dropout): it is a floor, and the decision for two 24 GB GPUs is the recipe's
    assert fsdp_memory_gb(qlora, shape, 2, offload=True) < 19.6
    placed = place(qlora, shape, 24, gpus=2)
    assert placed is not None and placed.way == "FSDP + CPU offload"
