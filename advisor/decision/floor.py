"""The floor under every pick: a rung must do better than always answering the commonest label.

A rung that scores no higher than the majority-class baseline on the primary metric has learned nothing
the label counts did not already say, whatever its interval: it is not eligible. A rung that is
ahead of the baseline, but not clearly, stays eligible and the recommendation names it (a warning for
the chosen rung). When no rung is ahead, nothing ships, and the verdict says what would settle it.
Each rung is compared with the baseline on its own (a one-sided question per rung: "is it worse than
answering a constant?"), with the same paired bootstrap as the ladder's comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.decision.assessment import RungResult
from advisor.decision.claims import metric_value
from advisor.decision.compare import compare_together, describe_gap
from harness.metrics.measurement import Measurement
from harness.metrics.simultaneous import PairInterval


@dataclass(frozen=True)
class FloorCheck:
    """Where a rung stands against the baseline."""

    gap: PairInterval  # rung - baseline
    below: bool  # not ahead of the baseline at all: not eligible

    def clearly_above(self) -> bool:
        """The rung clearly beats the baseline."""
        return self.gap.clearly_positive()


def floor_checks(
    rungs: list[RungResult],
    baseline: RungResult,
    task_type: str,
    labels: list[str],
    metric: str,
    measurement: Measurement,
) -> dict[str, FloorCheck]:
    """Each rung against the baseline, paired by test example."""
    checks = {}
    for rung in rungs:
        gap = compare_together([rung, baseline], task_type, labels, metric, measurement).gap(rung, baseline)
        below = metric_value(rung, metric) <= metric_value(baseline, metric)
        checks[rung.name] = FloorCheck(gap, below)
    return checks


def below_floor_reason(check: FloorCheck, baseline: RungResult, metric: str) -> str:
    """Why a rung under the floor is not eligible, with its paired difference from the baseline."""
    how = "clearly worse than" if check.gap.clearly_negative() else "no better than"
    return f"{how} {against_floor(check, baseline, metric)}"


def against_floor(check: FloorCheck, baseline: RungResult, metric: str) -> str:
    """ "always answering 'X', which scores metric v (the paired difference)": the floor a rung is held to."""
    return (
        f"always answering '{baseline.config['label']}', which scores {metric} "
        f"{metric_value(baseline, metric):.3f} ({describe_gap(check.gap, metric)})"
    )


def nothing_ships_summary(baseline: RungResult, metric: str, model: str) -> str:
    """The verdict when no rung beats the baseline, and what would settle it."""
    label = baseline.config["label"]
    return (
        f"Nothing ships: no rung beats always answering '{label}' ({metric} {metric_value(baseline, metric):.3f}). "
        f"To settle it, label more examples (the rarer classes above all) or try a stronger model than {model}."
    )
