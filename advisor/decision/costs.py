"""Dollars per rung: serving per 1k requests and per month, one-off training, and when tuning pays off.

Self-hosted serving is priced from the measured batched throughput on the named hardware; API
serving from the measured tokens per request (tuned rungs at the hosted fine-tuned model's
price). Training is priced from its measured time on the hardware it ran on, and, as the
alternative, from its tokens on a hosted fine-tuning service. A tuned rung's break-even month is
when its cheaper requests (shorter prompts) have repaid its training, against the best prompting rung.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from advisor.decision.assessment import CostSummary, EndpointSummary, RungResult, TokenSummary
from advisor.task.spec import CostSection
from harness.pricing.prices import (
    ApiPrice,
    GpuPrice,
    HostedTuningPrice,
    PriceTable,
    api_cost_per_1k,
    break_even_month,
    hardware_for_device,
    hosted_training_cost,
    monthly_cost,
    self_hosted_cost_per_1k,
    training_cost,
)


@dataclass(frozen=True)
class _Rates:
    """The prices a task's `costs:` section selects from the table, looked up once for all rungs."""

    api_name: str
    api: ApiPrice
    tuned_api: ApiPrice  # what the hosted fine-tuned model costs per token (the base API's price if none)
    serve_name: str
    serve: GpuPrice
    train_key: str
    train: GpuPrice
    hosted_name: str
    hosted: HostedTuningPrice


def price_rungs(results: Sequence[RungResult], costs: CostSection, prices: PriceTable, device: str) -> list[RungResult]:
    """Every rung with its `cost`, the tuned rungs with their break-even month against the best prompting rung."""
    rates = _rates(costs, prices, device)
    priced = [result.model_copy(update={"cost": _cost(result, costs, rates, prices)}) for result in results]
    reference = _best_prompting(priced)
    if reference is None:
        return priced
    return [_with_break_even(result, reference, costs) for result in priced]


def _rates(costs: CostSection, prices: PriceTable, device: str) -> _Rates:
    api_name, api_price = prices.api_price(costs.api_model)
    serve_name, serve = prices.gpu_price(costs.serving_hardware)
    train_key, train = prices.gpu_price(costs.training_hardware or hardware_for_device(device, prices), training=True)
    hosted_name, hosted = prices.hosted_tuning_price(costs.hosted_fine_tuning)
    tuned_api = prices.api_price(hosted.inference_model)[1] if hosted.inference_model else api_price
    return _Rates(api_name, api_price, tuned_api, serve_name, serve, train_key, train, hosted_name, hosted)


def serving_per_1k(
    costs: CostSection, prices: PriceTable, device: str, requests_per_s: float | None, tokens: TokenSummary, tuned: bool
) -> float | None:
    """$ per 1k requests under the task's hosting: how a measured rung is priced, and how `--plan` prices its
    estimate (one formula, so the plan's error is the error of its rate and tokens alone)."""
    return _serving(_rates(costs, prices, device), costs, requests_per_s, tokens, tuned)[0]


def _serving(
    rates: _Rates, costs: CostSection, requests_per_s: float | None, tokens: TokenSummary, tuned: bool
) -> tuple[float | None, float | None, float]:
    """(per 1k under the task's hosting, self-hosted per 1k, API per 1k)."""
    self_hosted = self_hosted_cost_per_1k(requests_per_s, rates.serve.per_hour) if requests_per_s else None
    api = api_cost_per_1k(tokens.prompt_mean, tokens.completion_mean, rates.tuned_api if tuned else rates.api)
    return (api if costs.hosting == "api" else self_hosted), self_hosted, api


def _cost(result: RungResult, costs: CostSection, rates: _Rates, prices: PriceTable) -> CostSummary:
    """What a rung costs to serve (per 1k requests, per month) and, if it trained, to train."""
    if result.endpoint is not None:
        return _endpoint_cost(result, result.endpoint, costs, prices)
    hosted = rates.hosted
    tuned = result.training is not None
    per_1k, self_hosted, api = _serving(rates, costs, result.latency.batched_examples_per_s, result.tokens, tuned)
    return CostSummary(
        hosting=costs.hosting,
        per_1k=per_1k,
        monthly=monthly_cost(per_1k, costs.requests_per_month) if per_1k is not None else None,
        requests_per_month=costs.requests_per_month,
        self_hosted_per_1k=self_hosted,
        api_per_1k=api,
        training=training_cost(result.training.seconds, rates.train.per_hour) if result.training else None,
        hosted_training=(
            hosted_training_cost(result.training.useful_tokens, 1, hosted.training_per_million)
            if result.training
            else None
        ),
        assumptions={
            "prices_as_of": prices.as_of.isoformat(),
            "api_model": f"{hosted.inference_model if tuned and hosted.inference_model else rates.api_name}",
            "serving_hardware": f"{rates.serve_name} at ${rates.serve.per_hour:g}/h",
            "training_hardware": f"{rates.train_key} at ${rates.train.per_hour:g}/h" if tuned else "",
            "hosted_fine_tuning": f"{rates.hosted_name} at ${hosted.training_per_million:g} per 1M tokens"
            if tuned
            else "",
        },
    )


def _endpoint_cost(
    result: RungResult, endpoint: EndpointSummary, costs: CostSection, prices: PriceTable
) -> CostSummary:
    """A remote rung: the endpoint's token price on the tokens its answers reported; a hosted fine-tune's training."""
    per_1k = None
    if endpoint.input_per_million is not None and endpoint.output_per_million is not None:
        price = ApiPrice(input_per_million=endpoint.input_per_million, output_per_million=endpoint.output_per_million)
        per_1k = api_cost_per_1k(result.tokens.prompt_mean, result.tokens.completion_mean, price)
    hosted_training = None
    tuning = ""
    if endpoint.fine_tuning_service and endpoint.fine_tuning_tokens is not None and endpoint.fine_tuning_epochs:
        name, service = prices.hosted_tuning_price(endpoint.fine_tuning_service)
        hosted_training = hosted_training_cost(
            endpoint.fine_tuning_tokens, endpoint.fine_tuning_epochs, service.training_per_million
        )
        tuning = (
            f"{name} at ${service.training_per_million:g} per 1M tokens x {endpoint.fine_tuning_epochs} epochs "
            f"of {endpoint.fine_tuning_tokens} train tokens (the task's tokenizer)"
        )
    priced = (
        f"{endpoint.price_source}: ${endpoint.input_per_million:g} / ${endpoint.output_per_million:g} per 1M "
        "prompt / completion tokens, on the tokens the endpoint reported"
        if per_1k is not None
        else f"no price: set endpoints.{endpoint.name}.price"
    )
    return CostSummary(
        hosting="endpoint",
        per_1k=per_1k,
        monthly=monthly_cost(per_1k, costs.requests_per_month) if per_1k is not None else None,
        requests_per_month=costs.requests_per_month,
        self_hosted_per_1k=None,
        api_per_1k=per_1k,
        hosted_training=hosted_training,
        assumptions={
            "prices_as_of": prices.as_of.isoformat(),
            "endpoint": f"{endpoint.name} ({endpoint.model}) {priced}",
            "hosted_fine_tuning": tuning,
        },
    )


def _best_prompting(results: Sequence[RungResult]) -> RungResult | None:
    """The prompting rung with the best primary metric and a known $ per request: what tuning must repay against."""
    prompting = [r for r in results if r.training is None and r.cost and r.cost.per_1k is not None]
    if not prompting:
        return None
    return max(prompting, key=lambda r: r.metrics[r.primary_metric].value if r.primary_metric in r.metrics else 0)


def _with_break_even(result: RungResult, reference: RungResult, costs: CostSection) -> RungResult:
    """A tuned rung with the month its saving per request repays its training, against the reference."""
    if result.training is None or result.cost is None or result.cost.per_1k is None:
        return result
    assert reference.cost is not None and reference.cost.per_1k is not None
    saving = reference.cost.per_1k - result.cost.per_1k
    one_off = result.cost.one_off_training()
    months = break_even_month(one_off, saving, costs.requests_per_month) if one_off is not None else None
    cost = result.cost.model_copy(update={"break_even_against": reference.name, "break_even_months": months})
    return result.model_copy(update={"cost": cost})
