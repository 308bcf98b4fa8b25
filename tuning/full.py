"""The full rung: every weight of the model fine-tuned on the task."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.tuned import TuneConfig, TunedPredictor


class FullConfig(TuneConfig):
    """Full fine-tuning options (learning rate default 2e-5)."""


@rung("full", config=FullConfig, step=4)
def build_full(config: FullConfig, context: RungContext) -> Predictor:
    """Build the full fine-tuning predictor."""
    return TunedPredictor("full", config, context)
