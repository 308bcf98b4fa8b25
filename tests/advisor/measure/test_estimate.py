"""`advisor estimate`: formulas against published figures and this machine's measurements; the command's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.measure.estimate import EstimateRequest, cli_request, make_request, run_estimate, to_json
from harness.errors import InputError
from harness.estimates.model_shapes import KNOWN_SHAPES, ModelShape, parse_params, shape_for_params, shape_from_config
from harness.estimates.training_cost import estimate_costs
from harness.estimates.tuning_memory import (
    GB,
    NF4_BYTES,
    QLORA_SLOWDOWN,
    GpuSpec,
    activation_bytes,
    adapter_params,
    fits,
    gpu_specs,
    memory_estimate,
    serving_cost_per_1k,
    training_flops,
    training_time,
)
from harness.pricing.prices import api_cost_per_1k, load_prices
from tests.advisor.measure.estimate_cli import estimate_output as _estimate_output

# LLaMA-Factory README, "Hardware Requirement" (estimated): Full (pure_bf16) 8x GB, LoRA 2x GB, QLoRA 4-bit x/2 GB.
PUBLISHED = {
    ("7B", "full"): 60,
    ("7B", "lora"): 16,
    ("7B", "qlora"): 6,
    ("70B", "full"): 600,
    ("70B", "lora"): 160,
    ("70B", "qlora"): 48,
}
TOLERANCE = 0.25


def _default(size: str, method: str, **overrides: Any) -> Any:
    """The estimate `advisor estimate --params SIZE` prints, through the request's defaults."""
    request = EstimateRequest()
    settings: dict[str, Any] = {
        "seq_len": request.seq_len,
        "batch_size": request.batch_size,
        "gradient_checkpointing": method == "qlora",
        "lora_r": request.lora_r,
    }
    settings.update(overrides)
    return memory_estimate(shape_for_params(parse_params(size)), method, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "method"), list(PUBLISHED))
def test_memory_matches_the_rule_of_thumb_table_within_25_percent(size: str, method: str) -> None:
    """7B: full ~60, LoRA ~16, QLoRA ~6 GB; 70B: ~600 / 160 / 48 GB (seq 512, batch 1, as the QLoRA paper's figure)."""
    published = PUBLISHED[(size, method)]
    estimate = _default(size, method).total_gb
    assert abs(estimate / published - 1) <= TOLERANCE, f"{size} {method}: {estimate:.1f} GB vs {published} GB"


def test_70b_full_is_also_within_25_percent_of_the_issues_500_gb() -> None:
    assert abs(_default("70B", "full").total_gb / 500 - 1) <= TOLERANCE


def test_the_command_prints_what_the_formulas_give() -> None:
    report = run_estimate(make_request(params="7B"))
    assert {m: round(b.total_gb, 6) for m, b in report.memory.items()} == {
        m: round(_default("7B", m).total_gb, 6) for m in ("full", "lora", "qlora")
    }


def test_qlora_fits_a_65b_model_on_one_48_gb_gpu_as_in_the_qlora_paper() -> None:
    """Dettmers et al. 2023: a 65B LLaMA fine-tuned on one 48 GB GPU; LoRA over 16-bit weights cannot."""
    shape = shape_for_params(parse_params("65B"))
    assert shape.source == "LLaMA-65B config"
    assert fits(_default("65B", "qlora"), 48)  # r=16, with 10% headroom
    # the paper's Guanaco run: r=64 on every linear layer; fits without headroom (paged optimizers absorb spikes)
    assert _default("65B", "qlora", lora_r=64).total_gb <= 48
    assert not fits(_default("65B", "lora"), 48)
    assert not fits(_default("65B", "full"), 80)


def test_nf4_with_double_quantisation_costs_4_127_bits_per_parameter() -> None:
    assert abs(NF4_BYTES * 8 - 4.127) < 0.001


# Measured on this machine (2 CPU cores, torch 2.13, transformers 5.23, peft 0.21), SmolLM2-135M, LoRA r=16 on all
# linear layers, fp32, no gradient checkpointing:
SAVED_TENSORS_GIB = 1.344  # bytes autograd saved for backward (saved_tensors_hooks), seq 128 x batch 8, full logits
OURS_LORA_PEAK_MIB = 4536.6  # benchmarks/results/train_throughput.json, ours-lora: batch 8 of ~107-token rows
TRAINER_PEAK_MIB = 12988.75  # the same file, trainer-max-length-lora: batch 8 padded to 512 tokens
RUNTIME_GIB = 0.5  # RSS of the Python process after importing torch, transformers, peft, trl and datasets


def test_activation_formula_matches_what_autograd_saved_for_the_135m_model() -> None:
    """What autograd keeps for backward is the activation term itself; the formula is within 20% of the measurement."""
    shape = KNOWN_SHAPES["SmolLM2-135M"]
    estimate = activation_bytes(shape, 128 * 8, 4, gradient_checkpointing=False) / GB
    assert abs(estimate / SAVED_TENSORS_GIB - 1) <= 0.20


@pytest.mark.parametrize(
    ("seq_len", "peak_mib", "weight_copies"),
    [(128, OURS_LORA_PEAK_MIB, 2), (512, TRAINER_PEAK_MIB, 1)],
)
def test_estimate_brackets_the_measured_peak_rss_of_the_135m_model(
    seq_len: int, peak_mib: float, weight_copies: int
) -> None:
    """Peak RSS of a CPU run minus the Python runtime lies between the estimate and twice it.

    The estimate leaves out the GPU overhead (no CUDA context on a CPU) and counts the base weights as
    often as the run held them (our loop keeps the engine's copy beside the trained one). It is a lower
    bound for RSS: glibc keeps freed blocks mapped, backward adds transient gradient buffers, and on CPU
    attention with a padding mask keeps the seq x seq probabilities that flash attention never stores;
    those grow with the same tokens, so RSS stays within twice the estimate.
    """
    shape = KNOWN_SHAPES["SmolLM2-135M"]
    b = memory_estimate(shape, "lora", seq_len=seq_len, batch_size=8, gradient_checkpointing=False, precision="fp32")
    estimate = b.total_gb - b.overhead_gb + (weight_copies - 1) * b.weights_gb
    measured = peak_mib / 1024 - RUNTIME_GIB
    assert estimate <= measured <= 2 * estimate, f"estimate {estimate:.2f} GiB, measured {measured:.2f} GiB"


def test_full_to_lora_flop_ratio_matches_this_machines_throughput_ratio() -> None:
    """benchmarks/results/train_throughput.json: ours-lora 268.7 useful tok/s, ours-full 161.7 (same rows, CPU)."""
    shape = KNOWN_SHAPES["SmolLM2-135M"]
    adapter = adapter_params(shape, 16)
    ratio = training_flops(shape, "full", 1) / training_flops(shape, "lora", 1, trainable_params=adapter)
    assert abs(ratio / (268.72 / 161.69) - 1) <= 0.20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7_000_000_000),
        ("70b", 70_000_000_000),
        ("135M", 135_000_000),
        ("1.5e9", 1_500_000_000),
        (" 1.5B ", 1_500_000_000),
        ("7_000_000_000", 7_000_000_000),
        ("500k", None),
        (13_000_000_000, 13_000_000_000),
    ],
)
def test_parse_params(text: str | int, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(InputError, match="between 1M and 100T"):
            parse_params(text)
    else:
        assert parse_params(text) == expected


@pytest.mark.parametrize("junk", ["", "seven", "7X", "-7B", "7 B B", "nan", "inf", "1e400", "7B7", True, None, 7.5])
def test_parse_params_rejects_junk_in_one_line(junk: Any) -> None:
    with pytest.raises(InputError) as error:
        parse_params(junk)
    assert str(error.value).startswith("--params: expected a parameter count") and "\n" not in str(error.value)


@pytest.mark.parametrize("name", list(KNOWN_SHAPES))
def test_known_configs_add_up_to_their_published_sizes_and_are_chosen_by_size(name: str) -> None:
    known = KNOWN_SHAPES[name]
    published = {
        "SmolLM2-135M": 134.5e6,
        "SmolLM2-360M": 361.8e6,
        "SmolLM2-1.7B": 1.71e9,
        "Llama-2-7B": 6.74e9,
        "Llama-3-8B": 8.03e9,
        "Llama-2-13B": 13.02e9,
        "LLaMA-33B": 32.5e9,
        "LLaMA-65B": 65.29e9,
        "Llama-2-70B": 68.98e9,
    }[name]
    assert known.implied_params() == pytest.approx(published, rel=0.01)
    derived = shape_for_params(round(published))
    assert (derived.layers, derived.hidden, derived.intermediate, derived.kv_heads) == (
        known.layers,
        known.hidden,
        known.intermediate,
        known.kv_heads,
    )


@pytest.mark.parametrize("n", [2e7, 1e9, 3e9, 20e9, 45e9, 150e9, 405e9])
def test_derived_shapes_add_up_to_the_count_and_grow_with_it(n: float) -> None:
    shape = shape_for_params(int(n))
    assert shape.implied_params() == pytest.approx(n, rel=0.05)
    assert shape.heads % shape.kv_heads == 0 and shape.hidden == shape.heads * shape.dim_per_head
    bigger = shape_for_params(int(n * 3))
    assert bigger.hidden >= shape.hidden and bigger.layers * bigger.hidden >= shape.layers * shape.hidden


def test_405b_lands_near_llama_3_405b() -> None:
    """Llama-3.1-405B: 126 layers, hidden 16384; extrapolated from Llama-2-70B within 20%."""
    shape = shape_for_params(parse_params("405B"))
    assert shape.hidden == pytest.approx(16384, rel=0.2) and shape.layers == pytest.approx(126, rel=0.25)


def test_shape_from_config_counts_the_parameters_of_a_real_model(tiny_model: Any, tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    shape = shape_from_config(config)
    assert shape.params == sum(p.numel() for p in tiny_model.parameters())
    assert (shape.layers, shape.hidden, shape.kv_heads, shape.tied_embeddings) == (2, 64, 2, True)


def test_shape_from_config_names_the_missing_field() -> None:
    with pytest.raises(InputError, match=r"^cfg.json: expected a positive integer 'num_hidden_layers' \(got None\)$"):
        shape_from_config({"hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10}, "cfg.json")
    with pytest.raises(InputError, match="mixture-of-experts"):
        shape_from_config({"hidden_size": 64, "num_local_experts": 8})


def test_lora_adapter_counts_r_times_in_plus_out_of_each_projection() -> None:
    """Llama-2-7B, r=16 on q/v (the LoRA paper's choice): 32 layers x 2 x 16 x (4096 + 4096) = 8.4M."""
    shape = KNOWN_SHAPES["Llama-2-7B"]
    assert adapter_params(shape, 16, "qv") == 32 * 2 * 16 * 8192
    assert adapter_params(shape, 16) == 32 * 16 * (4 * 8192 + 3 * (4096 + 11008))


def test_fits_uses_headroom() -> None:
    b = _default("7B", "full")
    assert fits(b, b.total_gb / 0.9) and not fits(b, b.total_gb / 0.9 - 0.01)
    assert fits(b, b.total_gb, headroom=1.0)


def test_training_time_is_flops_over_peak_times_mfu() -> None:
    shape = shape_for_params(7_000_000_000)
    assert training_time(shape, "full", 10**9, 989, 0.35) == pytest.approx(6 * 7e9 * 1e9 / (989e12 * 0.35))
    lora = training_time(shape, "lora", 10**9, 989, 0.3, trainable_params=40_000_000)
    assert lora == pytest.approx((4 * 7e9 + 6 * 4e7) * 1e9 / (989e12 * 0.3))
    qlora = training_time(shape, "qlora", 10**9, 989, 0.3, trainable_params=40_000_000, gradient_checkpointing=True)
    assert qlora == pytest.approx((6 * 7e9 + 6 * 4e7) * 1e9 / (989e12 * 0.3) * QLORA_SLOWDOWN)


def test_costs_are_gpu_hours_times_price_and_need_no_peaks_to_say_what_fits() -> None:
    shape = shape_for_params(7_000_000_000)
    memory = {m: _default("7B", m) for m in ("full", "lora")}
    gpus = [GpuSpec("H100", 80, 4.0, 989, 3.35), GpuSpec("Mystery", 24, 1.0, None, None)]
    options = {(o.method, o.gpu): o for o in estimate_costs(shape, memory, gpus, tokens=10**7)}
    full = options[("full", "H100")]
    assert full.fits_one and full.gpus == 1
    seconds = 6 * 7e9 * 1e7 / (989e12 * 0.35)
    assert full.cost_usd == pytest.approx(seconds / 3600 * 4.0)
    assert full.usd_per_million_tokens == pytest.approx(seconds / 3600 * 4.0 / 10)
    mystery = options[("lora", "Mystery")]
    assert mystery.fits_one and mystery.hours is None and mystery.cost_usd is None
    assert not options[("full", "Mystery")].fits_one


def test_sharded_training_costs_the_same_gpu_hours_in_less_wall_clock() -> None:
    shape = shape_for_params(70_000_000_000)
    memory = {"lora": _default("70B", "lora")}
    (option,) = estimate_costs(shape, memory, [GpuSpec("H100", 80, 4.0, 989, 3.35)], tokens=10**7)
    assert option.way == "FSDP" and option.gpus is not None and option.gpus > 1 and option.hours is not None
    assert option.cost_usd == pytest.approx(option.hours * option.gpus * 4.0)


def test_serving_cost_grows_with_the_prompt_and_shards_a_model_too_big_for_one_gpu() -> None:
    h100 = GpuSpec("H100", 80, 4.0, 989, 3.35)
    small = shape_for_params(7_000_000_000)
    short, long = serving_cost_per_1k(small, 150, 16, h100), serving_cost_per_1k(small, 1500, 16, h100)
    assert short is not None and long is not None and short.gpus == 1
    assert 0 < short.per_1k < long.per_1k
    # 7B at batch 256: decode reads 14 GB of weights per step at ~2 TB/s, far cheaper per request than one at a time
    assert short.requests_per_second > 50
    big = serving_cost_per_1k(shape_for_params(70_000_000_000), 150, 16, h100)
    assert big is not None and big.gpus == 2
    assert serving_cost_per_1k(shape_for_params(400_000_000_000), 150, 16, GpuSpec("T4", 16, 0.6, 65, 0.32)) is None


def test_report_prices_the_api_alternative_with_the_shipped_table() -> None:
    report = run_estimate(make_request(params="7B", gpus=["h100"]))
    prices = load_prices()
    rows = {row.rung: row for row in report.serving}
    _, mini = prices.api_price()
    assert rows["few_shot"].api_per_1k == pytest.approx(api_cost_per_1k(1000, 16, mini))
    assert rows["lora"].api_model.startswith("ft:")
    few_shot, zero_shot = rows["few_shot"].self_hosted_per_1k, rows["zero_shot"].self_hosted_per_1k
    assert few_shot is not None and zero_shot is not None and few_shot > zero_shot
    assert [g.name for g in report.gpus] == ["H100"]


def test_fits_on_lists_gpus_from_the_price_table() -> None:
    report = run_estimate(make_request(params="70B"))
    assert report.fits_on["full"] == [] and report.fits_on["lora"] == []
    assert "L40S" in report.fits_on["qlora"] and "T4" not in report.fits_on["qlora"]
    assert all(not g.name.startswith("cpu") for g in gpu_specs(load_prices()))


def test_json_output_parses() -> None:
    data = json.loads(_estimate_output("--params", "7B", "--gpus", "H100,L4", "--gpus", "A100-80GB", "--json"))
    assert data["kind"] == "estimate" and data["shape"]["layers"] == 32
    assert set(data["memory"]) == {"full", "lora", "qlora"}
    assert {o["gpu"] for o in data["training"]} == {"H100", "L4", "A100-80GB"}
    direct = run_estimate(cli_request("7B", None, 512, 1, 10_000_000, 16, ["H100,L4", "A100-80GB"]))
    assert data == json.loads(json.dumps(to_json(direct)))
    assert json.dumps(to_json(run_estimate(make_request(params="135M"))))


def test_a_local_folder_and_the_hub_cache_give_the_config_shape(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = run_estimate(make_request(model=str(tiny_model_dir), gpus=["T4"]))
    assert local.shape.hidden == 64
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = run_estimate(make_request(model="org/tiny", gpus=["T4"]))
    assert cached.shape.params == local.shape.params


def test_an_unknown_model_id_without_params_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(InputError) as error:
        run_estimate(make_request(model="nobody/unknown-model"))
    message = str(error.value)
    assert "\n" not in message and message.startswith("--model nobody/unknown-model:") and "--params" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "--params or --model: give exactly one"),
        ({"params": "7B", "model": "org/name"}, "--params or --model: give exactly one"),
        ({"params": "7B", "seq_len": 0}, "--seq-len: Input should be greater than or equal to 1"),
        ({"params": "7B", "gpus": ["H1000"]}, "--gpus: pricing.gpus: unknown hardware 'H1000'; did you mean"),
        ({"params": "7B", "gpus": ["cpu-2core"]}, "--gpus: expected at least one GPU"),
        ({"params": "7B", "epochs": 2}, "--epochs: unknown option"),
    ],
)
def test_bad_requests_are_one_line_input_errors(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as error:
        run_estimate(make_request(**fields))
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


def test_model_shape_is_a_plain_value() -> None:
    shape = ModelShape(1000, 1, 8, 16, 2, 1, 10)
    assert shape.dim_per_head == 4 and shape.linear_shapes()["k_proj"] == (8, 4)
