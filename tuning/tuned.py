"""What every tuned rung shares: options, the cached artifact, training, and answering with it.

A tuned rung trains on the task's train split (validation carved from it when the task has none),
saves the adapter or model with its card under a content hash of base model, data and options, and
is evaluated with the same short prompt as zero_shot: needing no demonstrations is the point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
from filelock import FileLock
from pydantic import Field

from harness.answering import answer, resolve_mode
from harness.data import split_examples
from harness.engine import Engine
from harness.errors import InputError
from harness.hashing import content_hash
from harness.rungs import RungConfig, RungContext
from harness.types import Example, Output
from tuning.artifacts import is_complete, read_card, save_artifact, write_card
from tuning.loop import LoopSettings, TrainRow, train
from tuning.methods import count_parameters, quantized_base, trainable_model
from tuning.virtual_tokens import soft_prefix, virtual_token_type

EVALUATION_ONLY = ("mode", "max_new_tokens")


class TuneConfig(RungConfig):
    """Training options shared by every tuned rung."""

    epochs: int = Field(default=3, ge=1, le=100)
    learning_rate: float | None = Field(default=None, gt=0, le=1)  # None: the method's default
    batch_tokens: int = Field(default=2048, ge=64, le=1_000_000)
    max_batch_size: int = Field(default=16, ge=1, le=1024)
    patience: int = Field(default=1, ge=1, le=100)
    max_length: int = Field(default=512, ge=16, le=32768)
    checkpoint_every: int = Field(default=10, ge=1)
    validation_share: float = Field(default=0.1, ge=0.0, lt=0.9)
    mode: Literal["auto", "score", "generate"] = "auto"
    max_new_tokens: int = Field(default=16, ge=1, le=4096)


class LoraOptions(TuneConfig):
    """LoRA: rank r (sweepable: `r: [4, 16, 64]`), alpha (default 2r), dropout, target modules."""

    r: int = Field(default=16, ge=1, le=1024)
    alpha: int | None = Field(default=None, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class VirtualTokenOptions(TuneConfig):
    """Prompt or prefix tuning: how many virtual tokens to learn."""

    num_virtual_tokens: int = Field(default=20, ge=1, le=512)


DEFAULT_LEARNING_RATE = {
    "lora": 2e-4,
    "qlora": 2e-4,
    "ia3": 3e-3,
    "full": 2e-5,
    "prompt_tuning": 3e-2,  # peft's examples: virtual tokens need far larger steps than weights
    "prefix_tuning": 1e-2,
}


class TunedPredictor:
    """Trains (or loads) the artifact on first use, then answers like zero_shot with the tuned model."""

    def __init__(self, method: str, config: TuneConfig, context: RungContext):
        self.method = method
        self.config = config
        self.context = context
        self.train_set, self.validation_set = _train_and_validation(context, config.validation_share)
        self.artifact_dir = context.cache_dir / "adapters" / self.artifact_key()
        self._engine: Engine | None = None
        self.trained_now = False

    def artifact_key(self) -> str:
        """Base model, data, prompt, method, options and seed: what determines the trained weights."""
        ctx = self.context
        options = {k: v for k, v in self.config.model_dump().items() if k not in EVALUATION_ONLY}
        data = [(e.id, e.input, e.target) for e in (*self.train_set, *self.validation_set)]
        return content_hash(self.method, options, ctx.model_fingerprint, asdict(ctx.prompts.format), data, ctx.seed)

    def fingerprint(self) -> str:
        """The artifact plus the evaluation options."""
        return content_hash(self.artifact_key(), self.config.mode, self.config.max_new_tokens)

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """Answer with the tuned model and the zero_shot prompt."""
        engine = self.engine()
        encoded = [self.context.prompts.split(example) for example in examples]
        mode = resolve_mode(self.config.mode, self.context.labels, self.method)
        return answer(engine, self.context.prompts, encoded, self.context.labels, mode, self.config.max_new_tokens)

    def prepare(self) -> None:
        """Train or load the tuned model before any request is timed."""
        self.engine()

    def engine(self) -> Engine:
        """An engine over the tuned model, training it first when no artifact is stored."""
        if self._engine is None:
            self.artifact_dir.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.artifact_dir) + ".lock"):  # a second run on this store waits, then loads
                model = self._load() if is_complete(self.artifact_dir) else self._train()
            base = self.context.engine
            soft = soft_prefix(model) if virtual_token_type(model) else None
            self._engine = Engine(
                model.base_model if soft else model,
                base.tokenizer,
                max_batch_tokens=base.max_batch_tokens,
                max_batch_size=base.max_batch_size,
                soft_prefix=soft,
            )
        return self._engine

    def card(self) -> dict[str, Any] | None:
        """The artifact's card (training facts, hyperparameters, losses); None before it is trained."""
        return read_card(self.artifact_dir) if is_complete(self.artifact_dir) else None

    def record_metrics(self, metrics: dict[str, float]) -> None:
        """Write the evaluated metrics into the card."""
        card = self.card()
        if card is not None:
            write_card(self.artifact_dir, {**card, "metrics": metrics})

    def _options(self) -> dict[str, Any]:
        options = self.config.model_dump()
        if isinstance(self.config, LoraOptions):
            options["alpha"] = self.config.alpha or 2 * self.config.r
        options["learning_rate"] = self.config.learning_rate or DEFAULT_LEARNING_RATE[self.method]
        return options

    def _init_tokens(self) -> list[int]:
        """Prompt tuning starts from the instruction's tokens (or the zero_shot prompt's when there is none)."""
        if self.method != "prompt_tuning":
            return []
        text = self.context.prompts.format.system_text()
        if text:
            return list(self.context.engine.tokenizer.encode(text, add_special_tokens=False))
        return list(self.context.prompts.encode(Example(id="", input="", target="")))

    def _base(self) -> Any:
        if self.method == "qlora":
            return quantized_base(self.context.model_path, self.context.device)
        return self.context.engine.model

    def fresh_trainable_model(self) -> Any:
        """The base wrapped for this method with this rung's options, seeded, before any training."""
        torch.manual_seed(self.context.seed)  # adapter initialisation is random: same seed, same adapter
        return trainable_model(self.method, self._base(), self._options(), init_tokens=self._init_tokens())

    def _train(self) -> Any:
        options = self._options()
        model = self.fresh_trainable_model()
        rows = training_rows(self.context, self.train_set, self.config.max_length)
        validation = training_rows(self.context, self.validation_set, self.config.max_length)
        if not rows:
            raise InputError(f"rungs.{self.method}: no train example fits max_length {self.config.max_length}")
        settings = LoopSettings(
            epochs=self.config.epochs,
            learning_rate=options["learning_rate"],
            batch_tokens=self.config.batch_tokens,
            max_batch_size=self.config.max_batch_size,
            patience=self.config.patience,
            checkpoint_every=self.config.checkpoint_every,
            seed=self.context.seed,
        )
        partial = self.artifact_dir.with_name(self.artifact_dir.name + ".partial")
        progress = self.context.training_progress
        report = train(
            model,
            rows,
            validation,
            settings,
            partial,
            self.context.engine.pad_id,
            progress=(lambda *p: progress(self.method, *p)) if progress else None,
        )
        trainable, total = count_parameters(model)
        card = {
            "method": self.method,
            "base_model": self.context.model_name,
            "base_fingerprint": self.context.model_fingerprint,
            "data_hash": content_hash([(e.id, e.input, e.target) for e in self.train_set]),
            "train_examples": len(rows),
            "validation_examples": len(validation),
            "skipped_too_long": len(self.train_set) - len(rows),
            "hyperparameters": {k: v for k, v in options.items() if k not in EVALUATION_ONLY},
            "trainable_parameters": trainable,
            "total_parameters": total,
            "trainable_share": trainable / max(total, 1),
            "training": report.__dict__,
            "device": self.context.device,
        }
        save_artifact(self.artifact_dir, model, card)
        _remove(partial)
        self.trained_now = True
        return model

    def _load(self) -> Any:
        if self.method == "full":
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(
                self.artifact_dir, use_safetensors=True, dtype=self.context.engine.model.dtype
            )
            return model.to(self.context.engine.device).eval()
        from peft import PeftModel

        base = self._base() if self.method == "qlora" else _copy(self.context.engine.model)
        return PeftModel.from_pretrained(base, str(self.artifact_dir), use_safetensors=True).eval()


def _train_and_validation(context: RungContext, share: float) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    if not context.train:
        raise InputError("rungs: a tuned rung needs a train split (data.train or data.path)")
    if context.validation or share == 0:
        return context.train, context.validation
    train, _, validation = split_examples(context.train, share, 0.0, context.seed, stratify=bool(context.labels))
    return tuple(train), tuple(validation)


def training_rows(context: RungContext, examples: Sequence[Example], max_length: int) -> list[TrainRow]:
    """Prompt (the zero_shot prompt) + answer tokens; loss on the answer only."""
    rows = []
    for example in examples:
        prompt = context.prompts.encode(example)
        answer_tokens = context.prompts.choice_tokens(example.target)
        tokens = (*prompt, *answer_tokens)
        if len(tokens) <= max_length:
            rows.append(TrainRow(tokens=tuple(tokens), completion=len(answer_tokens)))
    return rows


def _copy(model: Any) -> Any:
    import copy

    return copy.deepcopy(model)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
