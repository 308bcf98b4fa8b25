"""Prices and the cost arithmetic of each rung: $ per 1k requests, per month, for training, and break-even.

The price table ships as data (`harness/pricing/price_data/prices.yaml`, dated by `as_of`); a task file's
`pricing:` section is deep-merged over it. The arithmetic is pure functions, each with its formula,
so a report can show exactly how a number was reached.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from datetime import date
from importlib import resources
from typing import Annotated, Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from harness.errors import InputError
from harness.schema import NumbersNotBooleans, short_repr

PRICES_RESOURCE = ("harness.pricing", "price_data/prices.yaml")

Usd = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


class _Strict(NumbersNotBooleans):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiPrice(_Strict):
    """An API model's list price, USD per 1M tokens."""

    input_per_million: Usd
    output_per_million: Usd
    note: str | None = None


class GpuPrice(_Strict):
    """A machine's on-demand price per GPU-hour and its memory in GB (RAM for a CPU-only entry)."""

    per_hour: Usd
    memory_gb: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
    note: str | None = None


class HostedTuningPrice(_Strict):
    """A fine-tuning service's training price, and the api_models entry that prices the tuned model's calls."""

    training_per_million: Usd
    inference_model: str | None = None
    note: str | None = None


class PriceDefaults(_Strict):
    """The names used when a task does not choose: each must exist in its section."""

    api_model: str
    serving_hardware: str
    training_hardware: str
    hosted_fine_tuning: str


class PriceTable(_Strict):
    """The whole table: dated, with its sources per section."""

    as_of: date
    api_models: dict[str, ApiPrice]
    gpus: dict[str, GpuPrice]
    hosted_fine_tuning: dict[str, HostedTuningPrice]
    defaults: PriceDefaults
    sources: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_exist(self) -> PriceTable:
        models, gpus, tunings = self.api_models, self.gpus, self.hosted_fine_tuning
        references: list[tuple[str, str, dict[str, Any], str]] = [
            ("defaults.api_model", self.defaults.api_model, models, "API model"),
            ("defaults.serving_hardware", self.defaults.serving_hardware, gpus, "hardware"),
            ("defaults.training_hardware", self.defaults.training_hardware, gpus, "hardware"),
            ("defaults.hosted_fine_tuning", self.defaults.hosted_fine_tuning, tunings, "fine-tuning service"),
        ]
        for name, tuning in tunings.items():
            if tuning.inference_model is not None:
                path = f"hosted_fine_tuning.{name}.inference_model"
                references.append((path, tuning.inference_model, models, "API model"))
        for path, value, known, what in references:
            if value not in known:
                raise ValueError(f"{path}: {_unknown(value, known, what)}")
        return self

    def api_price(self, name: str | None = None) -> tuple[str, ApiPrice]:
        """The named API model's price (the default when None); unknown names list close matches."""
        key = _resolve(name or self.defaults.api_model, self.api_models, "API model", "pricing.api_models")
        return key, self.api_models[key]

    def gpu_price(self, name: str | None = None, *, training: bool = False) -> tuple[str, GpuPrice]:
        """The named hardware's price (the serving or training default when None)."""
        default = self.defaults.training_hardware if training else self.defaults.serving_hardware
        key = _resolve(name or default, self.gpus, "hardware", "pricing.gpus")
        return key, self.gpus[key]

    def hosted_tuning_price(self, name: str | None = None) -> tuple[str, HostedTuningPrice]:
        """The named fine-tuning service's price (the default when None)."""
        known = self.hosted_fine_tuning
        key = _resolve(
            name or self.defaults.hosted_fine_tuning, known, "fine-tuning service", "pricing.hosted_fine_tuning"
        )
        return key, known[key]


def load_prices(overrides: dict[str, Any] | None = None) -> PriceTable:
    """The shipped table with a task's `pricing:` section deep-merged over it (mappings merge, values replace)."""
    raw = _shipped_table()
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise InputError(
                f"pricing: expected a mapping of sections (gpus, api_models, ...) (got {short_repr(overrides)})"
            )
        raw = _deep_merge(raw, overrides)
    try:
        return PriceTable.model_validate(raw)
    except ValidationError as error:
        raise InputError(_describe(error)) from None


@functools.cache
def _shipped_table() -> dict[str, Any]:
    """The shipped table as parsed YAML, read once: a run prices in several places (pure-Python YAML, ~40 ms each).

    Never modified: validation only reads it, and a merge deep-copies it.
    """
    text = resources.files(PRICES_RESOURCE[0]).joinpath(PRICES_RESOURCE[1]).read_text(encoding="utf-8")
    table: dict[str, Any] = yaml.safe_load(text)
    return table


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_MESSAGES = {
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected text",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def _describe(error: ValidationError) -> str:
    """The first problem as one line: 'pricing.field.path: what was expected (got …)'."""
    first = error.errors()[0]
    kind = first["type"]
    location = ".".join(str(part) for part in first["loc"])
    if kind == "greater_than_equal":
        message = f"expected a number >= {first['ctx']['ge']:g}"
    elif kind == "greater_than":
        message = f"expected a number > {first['ctx']['gt']:g}"
    elif kind.startswith("date"):
        message = "expected a date like 2026-11-01"
    else:
        message = _MESSAGES.get(kind, first["msg"].removeprefix("Value error, "))
    if not location:
        # a cross-reference problem from the model validator already names its field path
        return f"pricing.{message}"
    got = first.get("input")
    shown = "" if kind in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {short_repr(got)})"
    return f"pricing.{location}: {message}{shown}"


def _unknown(name: str, known: dict[str, Any], what: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown {what} '{name}'{hint}"


def _resolve(name: str, known: dict[str, Any], what: str, where: str) -> str:
    if name in known:
        return name
    folded = [key for key in known if key.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(f"{where}: {_unknown(name, known, what)}")


def hardware_for_device(device: str, prices: PriceTable) -> str | None:
    """The gpus entry for a described device ('cpu', 'cuda (NVIDIA A100-SXM4-80GB)'), or None if none fits.

    An entry fits when every part of its name ('A100', '80GB') is a whole word of the device name;
    the entry with the most parts wins, so 'A100-80GB' beats a bare 'A100' and 'L4' never matches an L40S.
    CPU devices map to the CPU entry with the fewest cores (the price of a small VM).
    """
    if device.strip().lower().startswith("cpu"):
        cpus = sorted((key for key in prices.gpus if key.lower().startswith("cpu")), key=_core_count)
        return cpus[0] if cpus else None
    words = set(re.findall(r"[A-Z0-9]+", device.upper()))
    best: tuple[int, str] | None = None
    for key in prices.gpus:
        parts = re.findall(r"[A-Z0-9]+", key.upper())
        if parts and all(part in words for part in parts) and (best is None or len(parts) > best[0]):
            best = (len(parts), key)
    return best[1] if best else None


def _core_count(key: str) -> int:
    digits = re.search(r"\d+", key)
    return int(digits.group()) if digits else 0


def api_cost_per_1k(prompt_tokens: float, completion_tokens: float, price: ApiPrice) -> float:
    """USD per 1000 requests of mean size on a per-token API.

    cost_per_1k = 1000 x (prompt_tokens x input_per_million + completion_tokens x output_per_million) / 1e6
    """
    per_request = (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6
    return 1000 * per_request


def self_hosted_cost_per_1k(requests_per_second: float, price_per_hour: float) -> float:
    """USD per 1000 requests on rented hardware kept busy at the measured batched throughput.

    cost_per_1k = price_per_hour / (requests_per_second x 3600) x 1000
    Assumes full utilisation: idle hours cost the same and are not included.
    """
    if requests_per_second <= 0:
        raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
    return price_per_hour / (requests_per_second * 3600) * 1000


def monthly_cost(cost_per_1k: float, requests_per_month: float) -> float:
    """USD per month: monthly = cost_per_1k x requests_per_month / 1000."""
    return cost_per_1k * requests_per_month / 1000


def training_cost(seconds: float, price_per_hour: float) -> float:
    """USD for one training run on rented hardware: cost = seconds / 3600 x price_per_hour."""
    return seconds / 3600 * price_per_hour


def hosted_training_cost(training_tokens: int, epochs: int, price_per_million: float) -> float:
    """USD for a hosted fine-tuning job: cost = training_tokens x epochs / 1e6 x price_per_million."""
    return training_tokens * epochs / 1e6 * price_per_million


def break_even_month(training_cost: float, cheaper_by_per_1k: float, requests_per_month: float) -> float | None:
    """Months until per-request savings repay a one-off training cost; None when they never do.

    months = training_cost / (cheaper_by_per_1k x requests_per_month / 1000), None when savings <= 0.
    """
    savings_per_month = cheaper_by_per_1k * requests_per_month / 1000
    if savings_per_month <= 0:
        return None
    return training_cost / savings_per_month
