"""The ia3 rung: learned rescaling vectors on attention and feed-forward activations (peft IA3)."""

from __future__ import annotations

from harness.rungs import Predictor, RungContext, rung
from tuning.methods import wrap_ia3
from tuning.registry import TuningMethod, register_method
from tuning.tuned import TuneConfig, TunedPredictor


class Ia3Config(TuneConfig):
    """IA3 options (learning rate default 3e-3)."""


register_method(TuningMethod("ia3", wrap_ia3, learning_rate=3e-3))


@rung("ia3", config=Ia3Config, step=3)
def build_ia3(config: Ia3Config, context: RungContext) -> Predictor:
    """Build the ia3 predictor."""
    return TunedPredictor("ia3", config, context)
