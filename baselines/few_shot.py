"""The few_shot rung: k demonstrations from the train split before each question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Literal

from pydantic import Field

from harness.data.hashing import content_hash
from harness.errors import InputError
from harness.inference.answerer import PromptParts
from harness.inference.answering import resolve_mode
from harness.label_scoring import LabelScoring, calibrated, check_calibrate
from harness.retrieval.demonstrations import DemoSelector
from harness.rungs import Predictor, PromptSizes, RequestShape, RungContext, TunedModel, answer_tokens, rung
from harness.types import Example, Output

# Where a content-free input is shown, by selection. Fixed and random demonstrations do not depend on
# the input, so the content-free input goes into the prompt's own demonstrations (fixed: one context
# for the rung, random: one per example). Similar ones are chosen by the input: for a content-free
# input that choice is meaningless, and calibrating in each example's own neighbours would divide out
# the evidence they bring (their labels), so it is shown with the demonstrations of an empty
# retrieval, none: one context for the rung (benchmarks/calibration.py measures both).
CALIBRATION_CONTEXT = {"fixed": "its demonstrations", "random": "its demonstrations", "similar": "no demonstrations"}


class FewShotConfig(LabelScoring):
    """k demonstrations chosen `fixed` (same for all, seeded), `random` (per example) or `similar`.

    `search: {space: {k: [4, 8, 16], selection: [fixed, similar]}}` chooses among them on validation.
    """

    k: int = Field(default=4, ge=1, le=256)
    selection: Literal["fixed", "random", "similar"] = "fixed"
    balanced: bool = False
    max_new_tokens: int = Field(default=16, ge=1, le=4096)

    def request_shape(self, sizes: PromptSizes, has_labels: bool) -> RequestShape:
        """k demonstrations before the question; fixed ones are one cached prefix, similar ones are embedded."""
        return RequestShape(
            sizes.zero + self.k * sizes.demo,
            shared_prefix=self.selection == "fixed",
            embeds=self.selection == "similar",
            new_tokens=answer_tokens(self.mode, self.max_new_tokens, has_labels),
        )


class FewShotPredictor:
    """Shows demonstrations as earlier turns (chat models) or text blocks (base models)."""

    def __init__(self, config: FewShotConfig, context: RungContext):
        self.config = config
        self.context = context
        self.answerer = calibrated(context.answerer(), config, context, "few_shot", self.calibration_context)
        self.selector = DemoSelector(
            context.train, config.k, config.selection, config.balanced, context.seed, context.embedder
        )

    def fingerprint(self) -> str:
        """Model, prompt, labels, options, seed and the train split the demonstrations come from."""
        ctx = self.context
        pool = [(e.id, e.input, e.target) for e in ctx.train]
        return content_hash(
            "few_shot",
            self.config.answer_options(CALIBRATION_CONTEXT[self.config.selection]),
            self.answerer.fingerprint(),
            asdict(ctx.prompts.format),
            ctx.labels,
            ctx.seed,
            pool,
        )

    def calibration_context(self, parts: PromptParts) -> PromptParts:
        """The prompt a content-free input is shown in (see CALIBRATION_CONTEXT)."""
        if self.config.selection == "similar":
            return PromptParts(parts.example)
        return PromptParts(parts.example, parts.demos, demos_shared=parts.demos_shared)

    def tuned(self) -> TunedModel | None:
        """No weights change."""
        return None

    def prepare(self) -> None:
        """Load the model and embed the demonstration pool (similar selection) before any request is timed."""
        self.answerer.prepare()
        if self.config.selection == "similar" and self.context.train:
            self.selector.choose(self.context.train[:1])

    def predict(self, examples: Sequence[Example]) -> list[Output]:
        """One answer per example; with fixed demonstrations the whole prefix is cached once."""
        shared = self.config.selection == "fixed"
        demos = self.selector.choose(examples)
        parts = [PromptParts(e, tuple(d), demos_shared=shared) for e, d in zip(examples, demos, strict=True)]
        mode = resolve_mode(self.config.mode, self.context.labels, "few_shot")
        return self.answerer.answer(parts, self.context.labels, mode, self.config.max_new_tokens)


@rung("few_shot", config=FewShotConfig, sweep=("k",), step=1, remote=True)
def build_few_shot(config: FewShotConfig, context: RungContext) -> Predictor:
    """Build the few_shot predictor."""
    if not context.train:
        raise InputError("rungs.few_shot: needs a train split to draw demonstrations from (data.train or data.path)")
    check_calibrate(config, context.labels, "few_shot")  # bad input fails before any work
    return FewShotPredictor(config, context)
