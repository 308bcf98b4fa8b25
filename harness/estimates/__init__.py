"""Estimates before anything runs: the memory and time a tuning method needs."""
