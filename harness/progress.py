"""What a caller hears while a tuned rung searches and trains: each step, each trial, each evaluation.

Declared here, in the lower layer, so the tuning code can report without knowing who listens (the CLI
draws bars on a terminal and prints plain lines in a log).
"""

from __future__ import annotations

from typing import Any, Protocol


class TrainingProgress(Protocol):
    """Training events of a tuned rung, named by the rung."""

    def training(self, rung: str, step: int, total: int, loss: float, tokens_per_s: float) -> None:
        """A training step is done (step of the planned total, its loss, useful tokens/s)."""

    def trial(self, rung: str, number: int, trials: int, params: dict[str, Any]) -> None:
        """A search trial starts (number from 0, of `trials`, with these parameters)."""

    def evaluated(self, rung: str, epoch: float, loss: float, metric: float | None, metric_name: str) -> None:
        """The model was judged on the validation split at this point of training (1.5: halfway through epoch 2)."""
