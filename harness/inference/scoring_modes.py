"""How a rung's answers are read: the scoring modes, named as reports name them.

Plain names with no model behind them, so the deciding layer can say how two rungs were scored
without importing the engine (or torch).
"""

from __future__ import annotations

SCORING_MODES = {
    "likelihood": "exact label likelihoods",
    "echo": "exact label likelihoods (completions with echo)",
    "logprobs": "first-token logprobs (chat top_logprobs)",
    "generate": "generated answer, parsed",
}
"""How a rung's answers were read, as reports name it: a comparison across modes says so."""

EXACT_SCORING = frozenset({"likelihood", "echo"})
"""Scoring modes that give every label's exact likelihood, which calibration needs (first-token top_logprobs
leave labels out)."""
