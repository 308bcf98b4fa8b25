"""A trained artifact's card: what was trained, on what, how, and how well, as typed values.

The card is written beside the weights (card.json, card.md) and read back by every later command, so a
rung plugged in from outside is described the same way as `lora`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field


@dataclass
class TrainingReport:
    """What training did: losses per step and per evaluation, time, tokens and memory.

    The run is judged on validation a few times per epoch; `evaluation_epochs` says where (1.5: halfway
    through the second epoch), and the validation lists hold one value per evaluation.
    """

    train_losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)  # per step, as the optimizer used it
    tokens_per_s: list[float] = field(default_factory=list)  # per step: useful tokens so far / seconds so far
    validation_losses: list[float] = field(default_factory=list)
    validation_metrics: list[float] = field(default_factory=list)
    evaluation_epochs: list[float] = field(default_factory=list)
    selection_metric: str = "loss"
    steps: int = 0
    epochs_run: float = 0.0
    best_evaluation: int = 0  # which evaluation's weights were kept, from 1; 0: none
    seconds: float = 0.0
    completion_tokens: int = 0
    useful_tokens: int = 0  # every real token the batches stand for, the shared prefix once per row
    computed_tokens: int = 0  # the tokens run through the model (real tokens, the shared prefix once per batch)
    padded_tokens: int = 0  # padding positions run through the model beside them
    peak_rss_mb: float = 0.0
    resumed_from_step: int = 0

    @property
    def best_epoch(self) -> float:
        """Where in training the kept weights were judged (1.5: halfway through the second epoch); 0 for none."""
        return self.evaluation_epochs[self.best_evaluation - 1] if self.best_evaluation else 0.0


class AdapterCard(BaseModel):
    """The card of a trained adapter or model."""

    method: str  # the tuning method (what the artifact is, and how it loads and serves)
    objective: str = "sft"  # what it was trained to do: sft, dpo (preference pairs), distill (a teacher's answers)
    base_model: str
    base_fingerprint: str
    data_hash: str
    train_examples: int
    validation_examples: int = 0
    skipped_too_long: int = 0
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    trainable_parameters: int
    total_parameters: int
    trainable_share: float
    training: TrainingReport
    device: str = "cpu"
    search: dict[str, Any] | None = None  # the whole search (every trial, the choice), as tuning/search.py writes it
    metrics: dict[str, float] = Field(default_factory=dict)  # the evaluated metrics, once the test was answered
    # a preference-tuned adapter (dpo): rewards and log-probs per epoch, where its pairs came from, its SFT stage
    preference: dict[str, Any] | None = None
    # a distilled student: its teacher, the inputs the teacher labelled, agreement with the teacher per epoch
    distillation: dict[str, Any] | None = None
