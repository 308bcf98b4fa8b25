"""What a tuned rung tunes, and how it answers: one method's options on the task's data, prompts and metric.

Every part of a tuned rung reads this (the artifact keys, the trainer, the search, the predictor), and so
do the rungs that train a LoRA adapter with an objective of their own (dpo, distill). Answering lives
here because training judges the model on validation exactly as the rung answers the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import InputError
from harness.inference.answering import answer, resolve_mode
from harness.inference.engine import Engine
from harness.inference.models import model_parameters
from harness.inference.prompts import PromptBuilder
from harness.rungs import RungContext
from harness.types import Example, Output
from tuning.loop import TrainRow
from tuning.options import TuneConfig, rung_space, selection_metric
from tuning.registry import TuningMethod, get_method
from tuning.rows import tuned_prompts
from tuning.spaces import Dimension, prior_learning_rate
from tuning.virtual_tokens import soft_prefix, virtual_token_type


@dataclass(frozen=True)
class TuningTask:
    """A method and its options (fixed, or the space its search explores) on the task, checked when made."""

    method: str
    config: TuneConfig
    context: RungContext
    prompts: PromptBuilder  # the zero_shot prompt without the label list: the tuned model learned the labels
    metric: str  # the validation metric that picks epochs and trials
    parameters: int | None  # the base's size sets the learning-rate prior
    space: dict[str, Dimension]  # empty: nothing to search

    @classmethod
    def of(cls, method: str, config: TuneConfig, context: RungContext) -> TuningTask:
        """The task of `method` with `config`; a task without a train split, or a search without validation, is
        bad input."""
        if not context.train:
            raise InputError("rungs: a tuned rung needs a train split (data.train or data.path)")
        parameters = model_parameters(context.model_path)
        space = rung_space(method, config, parameters)
        if space and not context.validation:
            raise InputError(
                f"rungs.{method}.search: needs a validation split (data.validation, or data.validation_size > 0); "
                "or set search: false"
            )
        metric = selection_metric(method, config, context.task_type, context.primary_metric)
        return cls(method, config, context, tuned_prompts(context.prompts), metric, parameters, space)

    @property
    def spec(self) -> TuningMethod[Any]:
        """The registered tuning method."""
        return get_method(self.method)

    @property
    def train_set(self) -> tuple[Example, ...]:
        """The examples it trains on."""
        return self.context.train

    @property
    def validation_set(self) -> tuple[Example, ...]:
        """The examples that judge its epochs and trials."""
        return self.context.validation

    def concrete(self, params: dict[str, Any]) -> TuneConfig:
        """The fixed configuration of one point of the search space."""
        return self.config.model_copy(update={**params, "search": False})

    def with_defaults(self, config: TuneConfig) -> TuneConfig:
        """`config` with what it left to a default filled in (the method's learning-rate prior, LoRA's alpha)."""
        return config.with_defaults(prior_learning_rate(self.method, self.parameters))

    def engine_for(self, model: Any) -> Engine:
        """An engine that answers with this model (virtual tokens become a soft KV prefix)."""
        base = self.context.engine
        soft = soft_prefix(model) if virtual_token_type(model) else None
        return Engine(
            model.base_model if soft else model,
            base.tokenizer,
            max_batch_tokens=base.max_batch_tokens,
            max_batch_size=base.max_batch_size,
            soft_prefix=soft,
        )

    def answer_with(self, engine: Engine, examples: Sequence[Example]) -> list[Output]:
        """Answer as the rung answers the test, with the model behind `engine`."""
        encoded = [self.prompts.split(example) for example in examples]
        mode = resolve_mode(self.config.mode, self.context.labels, self.method)
        return answer(engine, self.prompts, encoded, self.context.labels, mode, self.config.max_new_tokens)


EncodedRows = tuple[tuple[int, ...], list[TrainRow], list[TrainRow]]  # shared prefix, train rows, validation rows


class PreparedTraining(Protocol):
    """What measuring a training rate or judging on validation needs of a trainer (tuning/trainer.py)."""

    task: TuningTask

    def fresh_model(self, config: TuneConfig | None = None) -> Any:
        """The base wrapped for the method, seeded, before any training."""

    def encoded_rows(self) -> EncodedRows:
        """The shared prefix and the train and validation rows, encoded."""
