"""The shipped price table, its overrides, and every cost formula against hand-computed values."""

from __future__ import annotations

from datetime import date

import pytest

from harness.errors import InputError
from harness.pricing.prices import (
    ApiPrice,
    api_cost_per_1k,
    break_even_month,
    hardware_for_device,
    hosted_training_cost,
    load_prices,
    monthly_cost,
    self_hosted_cost_per_1k,
    training_cost,
)


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def test_shipped_table_validates_and_its_defaults_exist(prices) -> None:
    assert isinstance(prices.as_of, date)
    assert prices.defaults.api_model in prices.api_models
    assert prices.defaults.serving_hardware in prices.gpus
    assert prices.defaults.training_hardware in prices.gpus
    assert prices.defaults.hosted_fine_tuning in prices.hosted_fine_tuning
    for section in ("api_models", "gpus", "hosted_fine_tuning"):
        assert prices.sources[section], f"no sources for {section}"
    assert prices.gpus["H100"].memory_gb == 80
    assert "cpu-2core" in prices.gpus


def test_api_cost_per_1k() -> None:
    price = ApiPrice(input_per_million=0.40, output_per_million=1.60)
    # 1000 x (500 x 0.40 + 20 x 1.60) / 1e6 = 1000 x 232 / 1e6 = 0.232
    assert api_cost_per_1k(500, 20, price) == pytest.approx(0.232)
    assert api_cost_per_1k(0, 0, price) == 0


def test_self_hosted_cost_per_1k() -> None:
    # 3.60 $/h at 2 req/s: 7200 req/h, so 1000 requests cost 3.60 / 7200 x 1000 = 0.50
    assert self_hosted_cost_per_1k(2.0, 3.60) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        self_hosted_cost_per_1k(0.0, 3.60)


def test_monthly_training_and_hosted_training_costs() -> None:
    assert monthly_cost(0.25, 2_000_000) == pytest.approx(500.0)
    # 1800 s is half an hour at 2.50 $/h
    assert training_cost(1800, 2.50) == pytest.approx(1.25)
    # 200k tokens x 3 epochs = 0.6M tokens at 5 $/M
    assert hosted_training_cost(200_000, 3, 5.0) == pytest.approx(3.0)


def test_break_even_month() -> None:
    # saves 0.10 $ per 1k at 500k requests/month = 50 $/month; 120 $ repaid in 2.4 months
    assert break_even_month(120.0, 0.10, 500_000) == pytest.approx(2.4)
    assert break_even_month(0.0, 0.10, 500_000) == 0
    assert break_even_month(120.0, 0.0, 500_000) is None
    assert break_even_month(120.0, -0.05, 500_000) is None
    assert break_even_month(120.0, 0.10, 0) is None


def test_overrides_add_a_gpu_and_change_a_default() -> None:
    table = load_prices(
        {
            "gpus": {"MI300X": {"per_hour": 2.0, "memory_gb": 192}, "H100": {"per_hour": 2.49}},
            "defaults": {"training_hardware": "MI300X"},
        }
    )
    assert table.gpus["MI300X"].memory_gb == 192
    assert table.gpus["H100"].per_hour == 2.49
    assert table.gpus["H100"].memory_gb == 80  # merged, not replaced
    assert table.defaults.training_hardware == "MI300X"
    assert table.defaults.api_model == load_prices().defaults.api_model
    assert "A100-80GB" in table.gpus


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"gpus": {"H100": {"per_hour": -1}}}, "pricing.gpus.H100.per_hour: expected a number >= 0"),
        ({"gpus": {"H100": {"per_hour": "cheap"}}}, "pricing.gpus.H100.per_hour: expected a number"),
        ({"gpus": {"B200": {"per_hour": 6.0}}}, "pricing.gpus.B200.memory_gb: required field is missing"),
        (
            {"api_models": {"x": {"input_per_million": 1, "output_per_million": 2, "cached": 0.5}}},
            "pricing.api_models.x.cached: unknown field",
        ),
        ({"defaults": {"api_model": "gpt-4o-mni"}}, "pricing.defaults.api_model: unknown API model 'gpt-4o-mni'"),
        ({"currency": "EUR"}, "pricing.currency: unknown field"),
    ],
)
def test_bad_overrides_give_one_line_naming_the_path(overrides, expected) -> None:
    with pytest.raises(InputError) as caught:
        load_prices(overrides)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(InputError, match=r"^pricing: expected a mapping"):
        load_prices(["gpus"])  # type: ignore[arg-type]


def test_unknown_names_suggest_close_matches(prices) -> None:
    with pytest.raises(InputError, match="did you mean gpt-4o-mini"):
        prices.api_price("gpt-4o-mnii")
    with pytest.raises(InputError, match=r"pricing\.gpus: unknown hardware 'H10'; did you mean H100"):
        prices.gpu_price("H10")
    assert prices.gpu_price("h100")[0] == "H100"  # case alone is forgiven


def test_hardware_for_device(prices) -> None:
    assert hardware_for_device("cpu", prices) == "cpu-2core"
    assert hardware_for_device("cuda (NVIDIA H100 80GB HBM3)", prices) == "H100"
    assert hardware_for_device("cuda (NVIDIA A100-SXM4-80GB)", prices) == "A100-80GB"
    assert hardware_for_device("cuda (NVIDIA L40S)", prices) == "L40S"
    assert hardware_for_device("cuda (NVIDIA L4)", prices) == "L4"
    assert hardware_for_device("cuda (Some Future GPU)", prices) is None


def test_unknown_hardware_lists_close_matches(prices) -> None:
    with pytest.raises(InputError, match="did you mean A100-80GB"):
        prices.gpu_price("A100-80G")
