"""The full rung: every weight of the model fine-tuned on the task."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_full
from tuning.registry import TuningMethod, register_method
from tuning.tuned import TuneConfig, TunedPredictor


class FullConfig(TuneConfig):
    """Full fine-tuning options (learning rate default 1e-4 for small models)."""


# about a tenth of LoRA's best rate at the same size
register_method(TuningMethod("full", wrap_full, learning_rate=1e-4, artifact="model"))


@rung("full", config=FullConfig, step=4)
def build_full(config: FullConfig, context: RungContext) -> Predictor:
    """Build the full fine-tuning predictor."""
    return TunedPredictor("full", config, context)
