"""Forgetting: each tuned rung against its base model on the same general-skills probes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from advisor.decision.assessment import ForgettingSummary, ProbeDelta
from advisor.task.spec import ForgettingSection
from harness.data.store import Store
from harness.inference.engine import Engine
from harness.metrics.comparison import paired_mean_difference
from harness.metrics.measurement import Measurement
from harness.probes.forgetting import probe_correct
from harness.probes.items import ProbeItem


class ProbeRun:
    """The probe set of one assessment and the base model's answers to it (computed once)."""

    def __init__(
        self,
        section: ForgettingSection,
        fingerprint: str,
        items: Sequence[ProbeItem],
        base: Engine,
        base_fingerprint: str,
        store: Store,
    ):
        self.section = section
        self.fingerprint = fingerprint
        self.items = list(items)
        self.base = base
        self.base_fingerprint = base_fingerprint
        self.store = store
        self._base_correct: list[bool] | None = None

    def base_correct(self) -> list[bool]:
        """The base model's per-item correctness."""
        if self._base_correct is None:
            self._base_correct = probe_correct(lambda: self.base, self.base_fingerprint, self.items, self.store)
        return self._base_correct

    def unchanged(self) -> ForgettingSummary:
        """A prompting rung: the weights are the base model's, so nothing can be forgotten."""
        return ForgettingSummary(weights_changed=False, probes=self.section.probes)

    def compare(
        self,
        tuned: Callable[[], Engine],
        tuned_fingerprint: str,
        *,
        max_forgetting: float | None,
        measurement: Measurement,
    ) -> ForgettingSummary:
        """Tuned against base on the same items: accuracy delta with a paired 95% interval, overall and per area."""
        base = self.base_correct()
        mine = probe_correct(tuned, tuned_fingerprint, self.items, self.store)
        overall = paired_mean_difference([float(x) for x in mine], [float(x) for x in base], measurement)
        by_area: dict[str, list[int]] = defaultdict(list)
        for index, item in enumerate(self.items):
            by_area[item.area].append(index)
        deltas = []
        for area, members in sorted(by_area.items()):
            area_tuned = [float(mine[i]) for i in members]
            area_base = [float(base[i]) for i in members]
            paired = paired_mean_difference(area_tuned, area_base, measurement)
            deltas.append(
                ProbeDelta(
                    area=area,
                    n=len(members),
                    base=sum(area_base) / len(members),
                    tuned=sum(area_tuned) / len(members),
                    delta=paired.difference,
                    ci_low=paired.ci_low,
                    ci_high=paired.ci_high,
                )
            )
        return ForgettingSummary(
            weights_changed=True,
            probes=self.section.probes,
            n_items=len(self.items),
            base_accuracy=sum(base) / len(base),
            tuned_accuracy=sum(mine) / len(mine),
            delta=overall.difference,
            ci_low=overall.ci_low,
            ci_high=overall.ci_high,
            p_value=overall.p_value,
            by_area=deltas,
            exceeds_max=max_forgetting is not None and -overall.difference > max_forgetting,
        )
