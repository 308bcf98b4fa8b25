"""The zero_shot rung: the instruction and the input, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from pydantic import Field

from harness.data.hashing import content_hash
from harness.inference.answerer import PromptParts
from harness.inference.answering import resolve_mode
from harness.label_scoring import LabelScoring, calibrated, check_calibrate
from harness.rungs import Predictor, PromptSizes, RequestShape, RungContext, TunedModel, answer_tokens, rung
from harness.types import Example, Output

CALIBRATION_CONTEXT = "the instruction alone"


class ZeroShotConfig(LabelScoring):
    """`score` picks the likeliest label; `generate` lets the model write and reads a label from it.

    `auto` scores when the task has labels (classification) and generates otherwise. `calibrate`
    divides out the prompt's own label prior, measured on content-free inputs.
    """

    max_new_tokens: int = Field(default=16, ge=1, le=4096)

    def request_shape(self, sizes: PromptSizes, has_labels: bool) -> RequestShape:
        """The prompt alone; generated tokens when it generates."""
        return RequestShape(sizes.zero, new_tokens=answer_tokens(self.mode, self.max_new_tokens, has_labels))


class ZeroShotPredictor:
    """Asks the base model each question with the task's prompt alone."""

    def __init__(self, config: ZeroShotConfig, context: RungContext):
        self.config = config
        self.context = context
        self.answerer = calibrated(context.answerer(), config, context, "zero_shot", lambda p: PromptParts(p.example))

    def fingerprint(self) -> str:
        """Model, prompt format, labels and options: everything that decides the outputs."""
        ctx = self.context
        options = self.config.answer_options(CALIBRATION_CONTEXT)
        if options["search"] is None:  # as before zero_shot could search, so stored answers keep their key
            del options["search"]
        return content_hash("zero_shot", options, self.answerer.fingerprint(), asdict(ctx.prompts.format), ctx.labels)

    def prepare(self) -> None:
        """Load the model before any request is timed."""
        self.answerer.prepare()

    def tuned(self) -> TunedModel | None:
        """No weights change."""
        return None

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """One answer per example."""
        mode = resolve_mode(self.config.mode, self.context.labels, "zero_shot")
        parts = [PromptParts(example) for example in examples]
        return self.answerer.answer(parts, self.context.labels, mode, self.config.max_new_tokens)


@rung("zero_shot", config=ZeroShotConfig, step=0, remote=True)
def build_zero_shot(config: ZeroShotConfig, context: RungContext) -> Predictor:
    """Build the zero_shot predictor."""
    check_calibrate(config, context.labels, "zero_shot")  # bad input fails before any work
    return ZeroShotPredictor(config, context)
