"""Measuring: a prepared run, every rung built in one place, answered, summarised, planned and trained."""
