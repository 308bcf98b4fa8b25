"""The regression gate: is the current assessment worse than the baseline, per rung and check?

Checks, for every rung in the baseline:
- quality, per metric: the absolute drop (and optionally the relative drop) against a limit; a drop
  fails only when it is significant (paired bootstrap on the shared test examples, else the two
  runs' own intervals), unless the gate is strict;
- p95 latency and $ per 1k requests: the relative rise against a limit;
- forgetting: the drop in probe accuracy against the base model, against a limit (significant unless strict);
- a rung that disappeared fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from advisor.decision.assessment import Assessment, RungResult
from advisor.decision.compare import compare_pair, same_examples
from advisor.task.spec import GatesSection as GateSettings
from harness.metrics.measurement import DEFAULT_MEASUREMENT, Measurement
from harness.metrics.task_metrics import definitions


@dataclass(frozen=True)
class Check:
    """One gate check: what was compared, the numbers, and the verdict."""

    rung: str
    check: str
    baseline: float | None
    current: float | None
    limit: str
    passed: bool
    detail: str

    @property
    def name(self) -> str:
        """rung.check, as a test case name."""
        return f"{self.rung}.{self.check}"


def run_gate(
    current: Assessment, baseline: Assessment, settings: GateSettings, measurement: Measurement = DEFAULT_MEASUREMENT
) -> list[Check]:
    """Every check of every baseline rung."""
    now = {r.name: r for r in current.rungs}
    checks: list[Check] = []
    for before in baseline.rungs:
        if settings.rungs is not None and before.name not in settings.rungs:
            continue
        after = now.get(before.name)
        if after is None:
            checks.append(
                Check(before.name, "present", None, None, "in both runs", False, "missing from the current run")
            )
            continue
        checks += _quality(before, after, current, baseline, settings, measurement)
        checks += _relative_rises(before, after, settings)
        checks += _forgetting(after, settings)
    return checks


def _quality(
    before: RungResult,
    after: RungResult,
    current: Assessment,
    baseline: Assessment,
    settings: GateSettings,
    measurement: Measurement,
) -> list[Check]:
    names = settings.metrics or [n for n in before.metrics if n in after.metrics]
    known = {d.name for d in definitions(current.task.type)}
    paired_ok = same_examples(before, after)
    checks = []
    for name in names:
        if name not in before.metrics or name not in after.metrics:
            continue
        old, new = before.metrics[name], after.metrics[name]
        drop = old.value - new.value
        relative = drop / old.value if old.value > 0 else 0.0
        too_far = (settings.max_drop is not None and drop > settings.max_drop) or (
            settings.max_relative_drop is not None and relative > settings.max_relative_drop
        )
        limits = []
        if settings.max_drop is not None:
            limits.append(f"drop <= {settings.max_drop:.3f}")
        if settings.max_relative_drop is not None:
            limits.append(f"relative drop <= {settings.max_relative_drop:.0%}")
        if paired_ok and name in known:
            gap = compare_pair(
                after,
                before,
                current.task.type,
                current.task.labels,
                name,
                replace(measurement, confidence=settings.confidence),
            )
            significant = gap.clearly_negative(settings.confidence)
            paired = gap.paired
            evidence = f"paired diff {paired.difference:+.3f} [{paired.ci_low:+.3f}, {paired.ci_high:+.3f}]"
            if gap.mcnemar_p is not None:  # few discordant answers: the bootstrap is overconfident, McNemar is not
                evidence += f", McNemar p={gap.mcnemar_p:.3g}"
        else:  # different test sets: only non-overlapping intervals count as a real drop
            significant = new.ci_high < old.ci_low
            evidence = f"intervals [{old.ci_low:.3f}, {old.ci_high:.3f}] -> [{new.ci_low:.3f}, {new.ci_high:.3f}]"
        failed = too_far and (significant or settings.strict)
        verdict = "significant" if significant else "not significant"
        detail = f"{old.value:.3f} -> {new.value:.3f} ({-drop:+.3f}, {verdict}; {evidence})"
        if too_far and not failed:
            detail += "; past the limit but not significant, so it passes (use --strict to fail it)"
        checks.append(
            Check(before.name, name, old.value, new.value, " and ".join(limits) or "none", not failed, detail)
        )
    return checks


def _relative_rises(before: RungResult, after: RungResult, settings: GateSettings) -> list[Check]:
    checks = []
    pairs = [
        ("p95_latency_s", before.latency.p95_s, after.latency.p95_s, settings.max_p95_latency_rise),
        (
            "cost_per_1k",
            before.cost.per_1k if before.cost else None,
            after.cost.per_1k if after.cost else None,
            settings.max_cost_rise,
        ),
    ]
    for name, old, new, limit in pairs:
        if limit is None or old is None or new is None or old <= 0:
            continue
        rise = new / old - 1
        checks.append(
            Check(
                before.name,
                name,
                old,
                new,
                f"rise <= {limit:.0%}",
                rise <= limit,
                f"{old:.4g} -> {new:.4g} ({rise:+.1%})",
            )
        )
    return checks


def _forgetting(after: RungResult, settings: GateSettings) -> list[Check]:
    forgetting = after.forgetting
    limit = settings.max_forgetting
    if limit is None or forgetting is None or not forgetting.weights_changed or forgetting.delta is None:
        return []
    drop = -forgetting.delta
    significant = forgetting.ci_high is not None and -forgetting.ci_high > limit
    failed = drop > limit and (significant or settings.strict)
    detail = (
        f"probe accuracy {forgetting.delta:+.3f} [{forgetting.ci_low:+.3f}, {forgetting.ci_high:+.3f}] "
        "against the base model"
    )
    return [Check(after.name, "forgetting", None, forgetting.delta, f"drop <= {limit:.3f}", not failed, detail)]


def gate_passed(checks: Sequence[Check]) -> bool:
    """Every check passed."""
    return all(check.passed for check in checks)
