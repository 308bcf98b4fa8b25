"""What a rung that trains a LoRA adapter with an objective of its own (dpo, distill) shares.

The adapter is an ordinary LoRA adapter: `lora` (the lora method's tuning task with the rung's LoRA
options) says how it loads, trains and answers: with the zero_shot prompt, exactly as the lora rung answers.
A subclass says what determines its weights (`artifact_key`) and how to train them (`train_into`); the rest
of the Predictor and TunedModel protocols is here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from harness.cards import AdapterCard
from harness.data.hashing import content_hash
from harness.distributed import group_lock
from harness.inference.answering import resolve_mode
from harness.inference.engine import Engine
from harness.rungs import Predictor, PromptAnswering, TunedModel
from harness.types import Example, Output
from tuning.artifacts import is_complete, read_card, write_card
from tuning.methods import standalone_model
from tuning.trainer import Trainer
from tuning.tuning_task import TuningTask


class ObjectiveAdapter(ABC):
    """A LoRA adapter trained with its own objective, stored under a content hash, answering like lora."""

    def __init__(self, lora: TuningTask, mode: str, max_new_tokens: int, trainer: Trainer | None = None):
        self.lora = lora
        self.context = lora.context
        self.prompts = lora.prompts
        # a fresh adapter, the task's rows, the validation metric, --plan's rates (dpo shares its SFT stage's)
        self.trainer = trainer or Trainer(lora)
        self.artifacts = self.trainer.artifacts
        self._evaluation = (mode, max_new_tokens)
        self._engine: Engine | None = None
        self.trained_now = False

    @abstractmethod
    def artifact_key(self) -> str:
        """A hash of everything that determines the adapter's weights."""

    @abstractmethod
    def train_into(self, folder: Path) -> Any:
        """Train the adapter, save it with its card into `folder`, and return the trained model."""

    @abstractmethod
    def planned_epochs(self, searched: frozenset[str] = frozenset()) -> float:
        """Epochs of LoRA-sized work it is expected to train, every stage counted (for `--plan`)."""

    def search_family(self) -> str | None:
        """Its own training searches nothing (its SFT stage is the lora rung's, planned with its options)."""
        return None

    def progress_as(self, rung: str) -> Callable[[int, int, float, float], None] | None:
        """The caller's training progress, with this rung's name on it (None when nobody listens)."""
        progress = self.context.training_progress
        return (lambda *step: progress.training(rung, *step)) if progress else None

    def fingerprint(self) -> str:
        """The artifact plus the evaluation options."""
        return content_hash(self.artifact_key(), *self._evaluation)

    @property
    def artifact_dir(self) -> Path:
        """The adapter's folder."""
        return self.context.cache_dir / "adapters" / self.artifact_key()

    @property
    def mergeable(self) -> bool:
        """A LoRA adapter over the full-precision base."""
        return True

    @property
    def answering(self) -> PromptAnswering:
        """It answers in the tuned zero_shot prompt, as the lora rung does."""
        mode, max_new_tokens = self._evaluation
        return PromptAnswering(resolve_mode(mode, self.context.labels, self.lora.method), max_new_tokens)

    @property
    def exports_as(self) -> Literal["merged", "whole"] | None:
        """A LoRA adapter merges into its base."""
        return "merged"

    def standalone(self) -> Any:
        """The adapter merged into a copy of its base (trained or loaded first)."""
        return standalone_model(self.engine().model, self.exports_as)

    def prepare(self) -> None:
        """Train or load before any request is timed."""
        self.engine()

    def tuned(self) -> TunedModel | None:
        """This predictor is its own trained model."""
        return self

    def reseeded(self, seed: int) -> Predictor | None:
        """Not retrained from other seeds: its stages (SFT, then preferences or a teacher's labels) would all
        have to be, at several times a lora rung's cost."""
        return None

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """Answer with the adapter and the zero_shot prompt, as the lora rung answers."""
        return self.lora.answer_with(self.engine(), examples)

    def engine(self) -> Engine:
        """An engine over the adapter, trained first when nothing is stored."""
        if self._engine is None:
            folder = self.artifact_dir
            folder.parent.mkdir(parents=True, exist_ok=True)
            with group_lock(folder):  # a second run on this store waits, then loads
                model = self.artifacts.load(folder) if is_complete(folder) else self.train_into(folder)
            self._engine = self.lora.engine_for(model)
        return self._engine

    def card(self) -> AdapterCard | None:
        """The adapter's card, once it is trained."""
        return read_card(self.artifact_dir) if is_complete(self.artifact_dir) else None

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """Write the evaluated metrics into the card."""
        card = self.card()
        if card is not None:
            write_card(self.artifact_dir, card.model_copy(update={"metrics": metrics}))

    def epoch_work(self) -> tuple[int, int]:
        """A LoRA epoch on the task's rows (the objective's own epoch is priced from it)."""
        return self.trainer.epoch_work()

    def training_rate(self, rows: int) -> float:
        """The LoRA's training rate on the task's rows."""
        return self.trainer.training_rate(rows)
