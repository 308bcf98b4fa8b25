"""The full rung: every weight of the model fine-tuned on the task."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_full
from tuning.registry import TuningMethod, register_method
from tuning.tuned import TuneConfig, TunedPredictor


class FullConfig(TuneConfig):
    """Full fine-tuning options (learning rate default 2e-5)."""


register_method(TuningMethod("full", wrap_full, learning_rate=2e-5, learning_rate_range=(5e-6, 2e-4), artifact="model"))


@rung("full", config=FullConfig, step=4)
def build_full(config: FullConfig, context: RungContext) -> Predictor:
    """Build the full fine-tuning predictor."""
    return TunedPredictor("full", config, context)
