"""Measuring: per-example scores, metric statistics with bootstrap intervals, paired comparisons, calibration."""
