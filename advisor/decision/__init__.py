"""Deciding from measurements: the Assessment record, comparisons, costs, gates and the recommendation (no torch)."""
