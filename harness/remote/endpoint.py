"""An endpoint as the task file names it: where it is, which model, how to pay for it and how hard to push it."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from harness.data.hashing import content_hash
from harness.errors import InputError

Tokenizer = Literal["own", "task"]
Scoring = Literal["auto", "echo", "logprobs", "generate"]
"""How a labelled task's answers are read at an endpoint (see harness.remote.scoring); auto: probed."""


@dataclass(frozen=True)
class TokenPrice:
    """USD per 1M prompt and completion tokens, and where the figure comes from."""

    input_per_million: float
    output_per_million: float
    source: str  # a price-table name, or "task file"


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible endpoint (`endpoints.<name>` in the task file)."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    price: TokenPrice | None = None
    # `task`: it serves the task's model (or an adapter of it), so a text prompt rendered with the task's
    # chat template reads the same there and exact label likelihoods can come from /completions echo
    tokenizer: Tokenizer = "own"
    max_concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 6
    max_requests: int = 20_000
    hosted_fine_tuning: str | None = None  # the price-table service the model was tuned on (training $)
    fine_tuning_epochs: int = 3
    in_house_hosts: tuple[str, ...] = field(default=(), compare=False)

    @property
    def where(self) -> str:
        """`endpoints.<name>`, for messages."""
        return f"endpoints.{self.name}"

    @property
    def host(self) -> str:
        """The host part of the base URL."""
        return urlsplit(self.base_url).hostname or ""

    def fingerprint(self) -> str:
        """What decides its answers: the address and the model (never the key)."""
        return content_hash("endpoint", self.base_url.rstrip("/"), self.model, self.tokenizer)

    def is_in_house(self) -> bool:
        """A loopback address, or a host the task lists as in-house."""
        return is_loopback(self.host) or self.host.lower() in {h.lower() for h in self.in_house_hosts}

    def api_key(self) -> str | None:
        """The key from the named environment variable; a variable that is not set is one clear line."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise InputError(
                f"{self.where}.api_key_env: the environment variable {self.api_key_env} is not set "
                "(the key is read from the environment only); export it and run again"
            )
        return key

    def check_in_house(self) -> None:
        """Refuse, before any data is sent, an endpoint outside the house when the data must stay in it."""
        if not self.is_in_house():
            raise InputError(
                f"{self.where}.base_url: facts.data_must_stay_in_house is true and host '{self.host}' is not "
                "local; list it in facts.in_house_hosts if it runs inside your organisation"
            )


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
