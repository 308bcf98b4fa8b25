"""The options every tuned rung shares, and what of them a search may explore.

A plug-in's rung options subclass these (`LoraOptions` for a LoRA variant), so it is trained,
searched and planned exactly like the built-in rungs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, field_validator

from harness.errors import InputError
from harness.metrics.task_metrics import metric_names, primary_metric
from harness.rungs import PromptSizes, RequestShape, RungConfig, answer_tokens
from tuning.spaces import Dimension, SearchOptions, default_space

# options that do not determine the trained weights: out of the artifact's key, the card and the search space
EVALUATION_ONLY = ("mode", "max_new_tokens", "search", "micro_batch_tokens")

_MicroBatchTokens = Annotated[int, Field(ge=16, le=1_000_000)]


class TuneConfig(RungConfig):
    """Training options shared by every tuned rung."""

    epochs: int = Field(default=5, ge=1, le=100)  # the planned most; early stopping on validation picks the best
    # a run whose every epoch ends on its best evaluation may go on for this many more, one epoch at a time
    extra_epochs: int = Field(default=3, ge=0, le=100)
    learning_rate: float | None = Field(default=None, gt=0, le=1)  # None: searched, or the method's prior
    batch_tokens: int = Field(default=2048, ge=64, le=1_000_000)
    max_batch_size: int = Field(default=8, ge=1, le=1024)  # rows a step: LoRA prefers small batches on small data
    # padded tokens one forward and backward holds (a step's rows run as micro-batches whose gradients add up):
    # "auto" is 512 on the CPU and measured once per model, method, row length and card on CUDA
    # (tuning/micro_batch.py); out of model_dump, so out of the artifact's key (it changes no weight)
    micro_batch_tokens: _MicroBatchTokens | Literal["auto"] = Field(default="auto", exclude=True)
    evaluations_per_epoch: int = Field(default=2, ge=1, le=20)  # validation judgements per epoch
    patience: float = Field(default=1.0, gt=0, le=100)  # epochs of judgements without improvement before stopping
    max_length: int = Field(default=512, ge=16, le=32768)
    checkpoint_every: int = Field(default=10, ge=1)
    mode: Literal["auto", "score", "generate"] = "auto"
    max_new_tokens: int = Field(default=16, ge=1, le=4096)
    search: SearchOptions | Literal[False] = Field(default_factory=SearchOptions)

    def request_shape(self, sizes: PromptSizes, has_labels: bool) -> RequestShape:
        """The zero_shot prompt without the label list (the tuned model learned the labels and needs no
        demonstrations); generated tokens when it generates."""
        return RequestShape(sizes.tuned, new_tokens=answer_tokens(self.mode, self.max_new_tokens, has_labels))

    def extension(self) -> int:
        """Epochs a run still improving at its last one may add: `extra_epochs`, but none when the task file
        fixed `epochs` without also setting `extra_epochs` (a number of epochs written down is kept)."""
        fixed = "epochs" in self.model_fields_set and "extra_epochs" not in self.model_fields_set
        return 0 if fixed else self.extra_epochs

    def training_max_length(self) -> int | None:
        """Training rows longer than this are skipped (the audit counts them)."""
        return self.max_length

    def with_defaults(self, learning_rate: float) -> Self:
        """These options with what they left to a default filled in, as training uses them and the card records
        them: the learning rate (the method's prior, given)."""
        return self.model_copy(update={"learning_rate": self.learning_rate or learning_rate})

    @field_validator("search", mode="before")
    @classmethod
    def _search_switch(cls, value: Any) -> Any:
        return {} if value is True or value is None else value


class LoraOptions(TuneConfig):
    """LoRA: rank r (sweepable: `r: [4, 16, 64]`), alpha (default 2r), dropout, target modules."""

    r: int = Field(default=16, ge=1, le=1024)
    alpha: int | None = Field(default=None, ge=1)
    # No dropout by default: on CPU its random masks take a fifth of a LoRA step, and early stopping on
    # validation already guards against over-fitting.
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"

    @property
    def lora_alpha(self) -> int:
        """The adapter's scale numerator: `alpha`, or 2r when unset."""
        return self.alpha or 2 * self.r

    def with_defaults(self, learning_rate: float) -> Self:
        """The learning rate and alpha filled in."""
        return super().with_defaults(learning_rate).model_copy(update={"alpha": self.lora_alpha})


class VirtualTokenOptions(TuneConfig):
    """Prompt or prefix tuning: how many virtual tokens to learn."""

    num_virtual_tokens: int = Field(default=20, ge=1, le=512)


def selection_metric(method: str, config: TuneConfig, task_type: str, primary: str) -> str:
    """The validation metric that picks epochs and trials: the task's primary metric unless the task says otherwise."""
    wanted = config.search.metric if config.search else "primary"
    if wanted == "primary":
        return primary or primary_metric(task_type)
    known = metric_names(task_type)
    if wanted != "loss" and wanted not in known:
        choices = ", ".join(["primary", "loss", *known])
        raise InputError(f"rungs.{method}.search.metric: '{wanted}' is not a {task_type} metric (one of: {choices})")
    return wanted


def rung_space(method: str, config: TuneConfig, parameters: int | None = None) -> dict[str, Dimension]:
    """The method's default space (for a base of this size) without the options the task file fixed, plus the
    task's own space."""
    if config.search is False:
        return {}
    fields = type(config).model_fields
    fixed = config.model_fields_set - {"search"}
    space: dict[str, Dimension] = {k: v for k, v in default_space(method, parameters).items() if k not in fixed}
    for name, dimension in config.search.space.items():
        if name not in fields or name in EVALUATION_ONLY:
            options = ", ".join(sorted(set(fields) - set(EVALUATION_ONLY)))
            raise InputError(f"rungs.{method}.search.space.{name}: not a training option (one of: {options})")
        if name in fixed:
            raise InputError(f"rungs.{method}.search.space.{name}: also set as a fixed option; keep one of the two")
        space[name] = _validated_choices(method, config, name, dimension) if isinstance(dimension, list) else dimension
    return space


def _validated_choices(method: str, config: TuneConfig, name: str, choices: list[Any]) -> list[Any]:
    """Each choice as the option itself would take it (YAML reads `1e-3` as text; the option reads a number)."""
    checked = []
    for index, choice in enumerate(choices):
        try:
            option = type(config).model_validate({**config.model_dump(), "search": False, name: choice})
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            raise InputError(f"rungs.{method}.search.space.{name}[{index}]: {problem} (got {choice!r})") from None
        checked.append(getattr(option, name))
    return checked
