"""Options of a prompting rung that can answer by scoring the labels: the mode, and contextual calibration.

`calibrate: on` divides each label's probability by the prompt's content-free prior
(harness/inference/content_free.py); `auto`, the default, tries off and on on the validation split,
as `search:` tries its alternatives, and keeps the better (off on a tie). Where the rung does not
score labels (it generates, or the task has none) calibration does not apply: `auto` is off and
`on` is bad input.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from harness.errors import InputError
from harness.inference.answerer import Answerer
from harness.inference.answering import resolve_mode
from harness.inference.content_free import CONTENT_FREE, CalibratedAnswerer, ContextOf
from harness.inference.scoring_modes import EXACT_SCORING
from harness.rungs import RungContext
from harness.selection import Searchable

Calibrate = Literal["auto", "on", "off"]


class LabelScoring(Searchable):
    """`mode: auto|score|generate` (auto scores when the task has labels) and `calibrate: auto|on|off`."""

    mode: Literal["auto", "score", "generate"] = "auto"
    calibrate: Calibrate = "auto"

    @field_validator("calibrate", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `on` / `off` as a boolean: `calibrate: on` must mean "on"
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    def implicit_space(self, context: RungContext) -> dict[str, list[Any]]:
        """`calibrate: auto` is a choice between off and on, where calibration applies."""
        if self.calibrate != "auto" or not calibration_applies(self.mode, context):
            return {}
        return {"calibrate": ["off", "on"]}

    def check_labels(self, labels: tuple[str, ...], rung: str) -> None:
        """The mode must fit the labels, and `calibrate: on` needs them scored."""
        check_calibrate(self, labels, rung)

    def calibrates(self) -> bool:
        """`calibrate: on` (an `auto` is on once chosen so)."""
        return self.calibrate == "on"

    def answer_options(self, policy: str) -> dict[str, Any]:
        """The options as a fingerprint hashes them: calibration is named only when on, so `off` (and an
        `auto` that chose nothing) keeps the key its answers had before the option existed."""
        options = self.model_dump(exclude={"calibrate"})
        if self.calibrate == "on":
            options["calibrate"] = {"inputs": list(CONTENT_FREE), "context": policy}
        return options


def scores_labels(mode: str, labels: tuple[str, ...]) -> bool:
    """Whether a rung with this mode answers by scoring the labels."""
    return bool(labels) and mode != "generate"


def calibration_applies(mode: str, context: RungContext) -> bool:
    """Labels scored by their exact likelihoods (locally, or by an endpoint that echoes them)."""
    if not scores_labels(mode, context.labels):
        return False
    return context.remote is None or context.remote.scoring("score") in EXACT_SCORING


def check_calibrate(config: LabelScoring, labels: tuple[str, ...], rung: str) -> None:
    """`calibrate: on` where the rung generates is bad input, named before any work."""
    resolve_mode(config.mode, labels, rung)
    if config.calibrate == "on" and not scores_labels(config.mode, labels):
        why = "this rung generates" if labels else "the task has no labels"
        raise InputError(f"rungs.{rung}.calibrate: 'on' needs the labels scored by likelihood (mode: score); {why}")


def calibrated(answerer: Answerer, config: LabelScoring, context: RungContext, rung: str, to: ContextOf) -> Answerer:
    """The rung's answerer, calibrating when `calibrate: on`; `to` places the content-free inputs."""
    if config.calibrate != "on":
        return answerer
    prompts = context.prompts
    return CalibratedAnswerer(answerer, to, lambda label: len(prompts.choice_tokens(label)), f"rungs.{rung}.calibrate")
