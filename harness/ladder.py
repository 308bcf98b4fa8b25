"""The steps of the adaptation ladder: where a rung sits, cheapest and most reversible first.

A rung registers with its step (harness/rungs.py); the decision walks the steps upwards and names them
in its reasons, and needs nothing else of the rung registry (nor the model libraries behind it).
"""

from __future__ import annotations

LADDER_STEPS = {
    0: "prompt",
    1: "demonstrations",
    2: "retrieval",
    3: "adapter",
    4: "full fine-tune",
    5: "preference tuning",
    6: "distillation",
}

ADAPTER_STEP = 3  # the first step of LADDER_STEPS whose rungs change weights
