"""The domain errors, re-exported for the advisor layer (they live in harness so every layer can raise them)."""

from harness.errors import InputError, LadderError, RunError

__all__ = ["InputError", "LadderError", "RunError"]
