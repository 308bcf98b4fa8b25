"""A model's part of a rung context: its engine and tokenizer (loaded on first use), prompts and fingerprint.

The task's own model gives every rung its context; a prompting rung may name another model (`model:`
on the rung, or a distillation teacher given as a model folder), which gets the same parts the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from advisor.task.spec import LoadedTask
from harness.data.hashing import content_hash
from harness.environment import Placement
from harness.errors import InputError
from harness.inference.engine import Engine
from harness.inference.models import ModelSource, load_model, load_tokenizer, resolve_model
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.inference.tokenizer import DeferredTokenizer, saved_chat_template
from harness.rungs import RungContext


@dataclass(frozen=True)
class ModelParts:
    """What a rung context takes from its model."""

    source: ModelSource
    engine: Engine
    prompts: PromptBuilder
    fingerprint: str  # keys every result computed with this model on this device and precision

    def into(self, context: RungContext) -> RungContext:
        """`context` answered by this model instead of its own."""
        return replace(
            context,
            engine=self.engine,
            prompts=self.prompts,
            model_fingerprint=self.fingerprint,
            model_path=self.source.path,
            model_name=self.source.name,
        )


def model_parts(
    source: ModelSource, task: LoadedTask, labels: tuple[str, ...], placement: Placement, on_load: Callable[[], None]
) -> ModelParts:
    """The model's prompts now; its tokenizer when something is first tokenized, its weights when a rung
    first asks (`on_load` says so): a run whose every answer is stored loads neither."""
    tokenizer = DeferredTokenizer(partial(load_tokenizer, source))

    def load() -> Any:
        on_load()
        return load_model(source, placement.device, placement.dtype)

    evaluation = task.spec.evaluation
    # the default budget grows with a CUDA card's free memory; a number the task file writes is kept
    sized = "batch_tokens" not in evaluation.model_fields_set
    engine = Engine.deferred(
        load, tokenizer, placement.device, max_batch_tokens=evaluation.batch_tokens, size_to_device=sized
    )
    prompts = PromptBuilder(tokenizer, prompt_format(task, labels, has_chat_template(source, tokenizer), source.name))
    return ModelParts(source, engine, prompts, content_hash(source.fingerprint, placement.device, placement.precision))


def has_chat_template(source: ModelSource, tokenizer: Any) -> bool:
    """Whether the model's tokenizer has a chat template: from a local folder's files where they tell, else asked."""
    saved = saved_chat_template(Path(source.path)) if Path(source.path).is_dir() else None
    return bool(tokenizer.chat_template) if saved is None else saved


def prompt_format(task: LoadedTask, labels: tuple[str, ...], has_template: bool, model: str) -> PromptFormat:
    """The task's prompt for this model (chat when its tokenizer has a template, unless the task says)."""
    prompt = task.spec.prompt
    if prompt.chat == "on" and not has_template:
        raise InputError(f"{task.path}: prompt.chat is 'on' but model '{model}' has no chat template")
    chat = has_template if prompt.chat == "auto" else prompt.chat == "on"
    return PromptFormat(
        instruction=task.spec.instruction,
        template=prompt.template,
        chat=chat,
        labels=labels,
        list_labels=prompt.list_labels,
        choice_prefix="" if chat else " ",
    )


class OtherModels:
    """The models other than the task's that rungs of this run answer with, each loaded once."""

    def __init__(
        self,
        task: LoadedTask,
        labels: tuple[str, ...],
        placement: Placement,
        allow_pickle: bool,
        on_load: Callable[[str], None],
    ):
        self.task = task
        self.labels = labels
        self.placement = placement
        self.allow_pickle = allow_pickle
        self.on_load = on_load
        self._parts: dict[str, ModelParts] = {}
        self._sources: dict[str, ModelSource] = {}

    def check(self, model: str, where: str) -> ModelSource:
        """The model's source (found once), or one line naming where it was asked for (before anything loads)."""
        if model not in self._sources:
            try:
                self._sources[model] = resolve_model(model, allow_pickle=self.allow_pickle)
            except InputError as error:
                raise InputError(f"{where}.model: {error}") from None
        return self._sources[model]

    def context_for(self, model: str | None, context: RungContext, where: str) -> RungContext:
        """`context` answered by `model` (None: the task's own, unchanged)."""
        if model is None:
            return context
        if model not in self._parts:
            source = self.check(model, where)
            self._parts[model] = model_parts(
                source, self.task, self.labels, self.placement, lambda: self.on_load(model)
            )
        return self._parts[model].into(context)
