"""A prompting rung's contextual calibration as the Assessment records it and the reports say it.

One place for it, so the terminal, Markdown and HTML reports say the same sentence:
"few_shot: calibrate on (chosen on validation: accuracy 0.710 vs 0.520 off); content-free prior: spam 0.83, ham 0.17".
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean
from typing import Any

from advisor.decision.assessment import CalibrationSummary, RungResult, SearchSummary
from harness.inference.scoring_modes import EXACT_SCORING
from harness.types import Record

_SHOWN_LABELS = 4  # the prior's largest entries named in the sentence; the Assessment has them all


def calibration_summary(
    config: dict[str, Any], selection: SearchSummary | None, records: Sequence[Record]
) -> CalibrationSummary | None:
    """The rung's calibration from its chosen options, its choice and its test answers; None when it has none."""
    setting = config.get("calibrate")
    if setting is None:
        return None
    priors = [r.output.detail["content_free"] for r in records if "content_free" in r.output.detail]
    contexts = len({tuple(sorted(p.items())) for p in priors})
    labels = list(priors[0]) if priors else []
    prior = {label: round(fmean(p[label] for p in priors), 6) for label in labels}
    charged = fmean(float(r.output.detail.get("content_free_tokens", 0)) for r in records) if records else 0.0
    metric, validation = _validation(selection)
    if validation:
        decided = "chosen on validation"
    elif setting == "auto":
        decided = _why_not_chosen(records)
    else:
        decided = "set in the task file"
    return CalibrationSummary(
        setting="on" if setting == "on" else "off",
        decided=decided,
        metric=metric,
        validation=validation,
        prior=prior,
        contexts=contexts,
        content_free_tokens=charged,
    )


def _validation(selection: SearchSummary | None) -> tuple[str, dict[str, float]]:
    """The validation metric with calibration off and on, the chosen trial's other options held fixed."""
    if selection is None or "calibrate" not in selection.space:
        return "", {}
    chosen = next(t for t in selection.trials if t.number == selection.chosen)
    others = {k: v for k, v in chosen.params.items() if k != "calibrate"}
    values = {
        str(t.params["calibrate"]): t.validation_metrics[0]
        for t in selection.trials
        if t.validation_metrics and {k: v for k, v in t.params.items() if k != "calibrate"} == others
    }
    return selection.metric, values


def _why_not_chosen(records: Sequence[Record]) -> str:
    if any(
        "logprobs" in r.output.detail and r.output.detail.get("scoring", "likelihood") in EXACT_SCORING for r in records
    ):
        return "auto: no validation split to choose on"
    return "auto: does not apply (the rung does not score labels by their exact likelihood)"


def calibration_line(rung: RungResult) -> str | None:
    """One sentence: calibrated or not, how that was decided, and the prior it divided by."""
    calibration = rung.calibration
    if calibration is None or not (calibration.validation or calibration.setting == "on"):
        return None  # off where nothing was chosen: nothing to say beyond the config
    line = f"{rung.name}: calibrate {calibration.setting}"
    if calibration.validation:
        other = "off" if calibration.setting == "on" else "on"
        mine = calibration.validation.get(calibration.setting)
        theirs = calibration.validation.get(other)
        if mine is not None and theirs is not None:
            line += f" (chosen on validation: {calibration.metric} {mine:.3f} vs {theirs:.3f} {other})"
    else:
        line += f" ({calibration.decided})"
    if calibration.setting == "on" and calibration.prior:
        top = sorted(calibration.prior.items(), key=lambda item: -item[1])[:_SHOWN_LABELS]
        rest = len(calibration.prior) - len(top)
        named = ", ".join(f"{label} {p:.2f}" for label, p in top) + (f" and {rest} more labels" if rest else "")
        several = f", mean of {calibration.contexts} contexts" if calibration.contexts > 1 else ""
        line += f"; content-free prior{several}: {named}"
        if calibration.content_free_tokens:
            line += f"; {calibration.content_free_tokens:.0f} content-free prompt tokens per request"
    return line
