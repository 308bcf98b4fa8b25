"""The task's endpoints: resolved from the task file, checked before any data is sent, and bound to rungs.

Checks happen when the run is prepared, before the model loads and before any request: an unset key
variable, or a non-local host when the data must stay in house, is one line and exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from advisor.decision.assessment import EndpointSummary
from advisor.task.rung_plan import PlannedRung
from advisor.task.spec import EndpointSection, TaskSpec
from harness.data.store import Store
from harness.inference.scoring_modes import SCORING_MODES
from harness.pricing.prices import PriceTable, load_prices
from harness.remote.answerer import RemoteAnswerer
from harness.remote.client import EndpointClient
from harness.remote.endpoint import Endpoint, TokenPrice
from harness.rungs import RungContext


def resolve_endpoints(spec: TaskSpec, planned: Sequence[PlannedRung] | None = None) -> dict[str, Endpoint]:
    """The endpoints the planned rungs run against, or all of the task's (a plan needs no key: nothing is sent)."""
    prices = load_prices(spec.pricing)
    used = set(spec.endpoints) if planned is None else {p.endpoint for p in planned if p.endpoint is not None}
    return {name: endpoint_of(name, spec.endpoints[name], spec, prices) for name in sorted(used)}


def check_endpoints(endpoints: dict[str, Endpoint], spec: TaskSpec) -> None:
    """Before any request: every key's variable is set, and every host may see the data."""
    for endpoint in endpoints.values():
        if spec.facts.data_must_stay_in_house:
            endpoint.check_in_house()
        endpoint.api_key()


def endpoint_of(name: str, section: EndpointSection, spec: TaskSpec, prices: PriceTable) -> Endpoint:
    """The harness's view of one `endpoints:` entry, its price looked up in the price table."""
    price = None
    if isinstance(section.price, str):
        key, listed = prices.api_price(section.price)
        price = TokenPrice(listed.input_per_million, listed.output_per_million, f"price table: {key}")
    elif section.price is not None:
        price = TokenPrice(section.price.input_per_million, section.price.output_per_million, "task file")
    return Endpoint(
        name=name,
        base_url=section.base_url,
        model=section.model,
        api_key_env=section.api_key_env,
        price=price,
        tokenizer=section.tokenizer,
        max_concurrency=section.max_concurrency,
        timeout_s=section.timeout_s,
        max_retries=section.max_retries,
        max_requests=section.max_requests,
        hosted_fine_tuning=section.fine_tuning.service if section.fine_tuning else None,
        fine_tuning_epochs=section.fine_tuning.epochs if section.fine_tuning else 0,
        in_house_hosts=tuple(spec.facts.in_house_hosts),
    )


@dataclass
class EndpointBinding:
    """Each remote rung's answerer; the rungs of one endpoint share its client, so the run's budget is one.

    It knows every endpoint of the task (a teacher may run at one that no selected rung names), and
    checks each before its first request as the selected ones were checked before the run.
    """

    endpoints: dict[str, Endpoint]
    store: Store
    in_house_only: bool = False

    def __post_init__(self) -> None:
        self._answerers: dict[str, RemoteAnswerer] = {}
        self._clients: dict[str, EndpointClient] = {}

    def context_for(self, planned: PlannedRung, context: RungContext) -> RungContext:
        """The rung's context: its prompts answered by its endpoint, or unchanged for a local rung."""
        answerer = self.answerer(planned, context)
        return context if answerer is None else replace(context, remote=answerer)

    def answerer(self, planned: PlannedRung, context: RungContext) -> RemoteAnswerer | None:
        """The rung's answerer (made once), or None for a local rung."""
        if planned.endpoint is None:
            return None
        if planned.name not in self._answerers:
            endpoint = self.endpoints[planned.endpoint]
            self._answerers[planned.name] = RemoteAnswerer(
                endpoint, lambda: self.client(endpoint), context.prompts, self.store, context.labels, planned.scoring
            )
        return self._answerers[planned.name]

    def client(self, endpoint: Endpoint) -> EndpointClient:
        """The endpoint's one client of this run (the key is read when it is made)."""
        if endpoint.name not in self._clients:
            if self.in_house_only:
                endpoint.check_in_house()
            self._clients[endpoint.name] = EndpointClient(endpoint)  # reads the key: an unset one fails here
        return self._clients[endpoint.name]

    def close(self) -> None:
        """Close every client's connections."""
        for client in self._clients.values():
            client.close()


def summary_of(endpoint: Endpoint, answerer: RemoteAnswerer, scoring: str, tuning_tokens: int) -> EndpointSummary:
    """What the Assessment says about where a remote rung ran and what it cost to ask."""
    price = endpoint.price
    return EndpointSummary(
        name=endpoint.name,
        base_url=endpoint.base_url,
        model=endpoint.model,
        in_house=endpoint.is_in_house(),
        scoring=scoring,
        scoring_text=SCORING_MODES.get(scoring, scoring),
        max_concurrency=endpoint.max_concurrency,
        requests_sent=answerer.sent,
        input_per_million=price.input_per_million if price else None,
        output_per_million=price.output_per_million if price else None,
        price_source=price.source if price else None,
        fine_tuning_service=endpoint.hosted_fine_tuning,
        fine_tuning_epochs=endpoint.fine_tuning_epochs if endpoint.hosted_fine_tuning else None,
        fine_tuning_tokens=tuning_tokens if endpoint.hosted_fine_tuning else None,
    )


def training_tokens(context: RungContext) -> int:
    """Tokens of the train split as a fine-tuning job reads them (prompt and answer), with the task's tokenizer."""
    prompts = context.prompts
    return sum(len(prompts.encode(e)) + len(prompts.choice_tokens(e.target)) for e in context.train)
