"""The recommendation policy measured on simulated ladders whose true accuracies are known.

Each ladder has seven rungs (zero_shot, few_shot, few_shot_similar, rag, lora, qlora, full) answering
the same n test examples. Answers are correlated the way real rungs' are: an example's latent
difficulty u ~ U(0, 1) decides every rung's answer with probability `shared` (correct when u < the
rung's true accuracy), and an independent draw decides it otherwise, so each rung's true accuracy is
exactly its set value and paired comparisons see realistic disagreement. Three procedures pick a rung
on each ladder: `mcb`, the real policy (`advisor.decision.decide.decide`: multiple comparisons with the best,
harness/metrics/simultaneous.py), and the two it replaced, `holm` and `max_t`
(benchmarks/decision_procedures.py), each followed by the ladder's pick. The simulation counts:

- step-up rate: all rungs truly equal, how often something above the lowest rung ships;
- power: one rung truly `--gap` better (the adapter), how often it ships;
- wrong ship: how often the shipped rung is truly worse than a rung lower on the ladder by more
  than the tolerance; miss: how often a rung truly better than the shipped one by more than the
  tolerance exists;
- coverage: how often the intervals the recommendation prints beside its verdicts (mcb) contain the
  true difference, each on its own and all of a ladder's at once.

    python benchmarks/decision_sim.py [--ladders 200] [--sizes 100,300,1000] [--gap 0.10] [--name decision_sim]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from harness.metrics.measurement import Measurement

RUNGS = [  # name, ladder step, $ per 1k requests (cheaper first within a step)
    ("zero_shot", 0, 0.002),
    ("few_shot", 1, 0.010),
    ("few_shot_similar", 1, 0.015),
    ("rag", 2, 0.012),
    ("lora", 3, 0.003),
    ("qlora", 3, 0.004),
    ("full", 4, 0.003),
]
TRUE_BASE = 0.75


def simulated_rung(name: str, step: int, per_1k: float, correct: np.ndarray) -> Any:
    """A RungResult with per-example records, as the assessment stores them."""
    from advisor.decision.assessment import (
        CostSummary,
        LatencySummary,
        MetricValue,
        RecordSummary,
        RungResult,
        TokenSummary,
    )

    value = float(correct.mean())
    half = 1.96 * (value * (1 - value) / len(correct)) ** 0.5
    records = [
        RecordSummary(
            id=f"e{i}",
            input="x",
            target="a",
            output="a" if c else "b",
            prediction="a" if c else "b",
            correct=bool(c),
            prompt_tokens=10,
            completion_tokens=1,
            latency_s=0.01,
            scores={"correct": float(c), "value": float(c)},
        )
        for i, c in enumerate(correct)
    ]
    return RungResult(
        name=name,
        kind=name,
        step=step,
        tuned=step >= 3,
        config={},
        primary_metric="accuracy",
        metrics={"accuracy": MetricValue(value=value, ci_low=value - half, ci_high=value + half)},
        latency=LatencySummary(p50_s=0.1, p95_s=0.2, sample_size=16, batched_examples_per_s=10.0),
        tokens=TokenSummary(prompt_mean=10, completion_mean=1),
        no_label_outputs=0,
        computed=len(correct),
        reused=0,
        cost=CostSummary(
            hosting="self_hosted",
            per_1k=per_1k,
            monthly=per_1k * 100,
            requests_per_month=100_000,
            self_hosted_per_1k=per_1k,
            api_per_1k=per_1k,
        ),
        records=records,
    )


def simulated_ladder(truth: list[float], n: int, shared: float, rng: np.random.Generator) -> Any:
    """An Assessment of seven rungs with these true accuracies on n examples."""
    from advisor.decision.assessment import Assessment, Environment, TaskSummary

    difficulty = rng.random(n)
    rungs = []
    for (name, step, per_1k), accuracy in zip(RUNGS, truth, strict=True):
        common = rng.random(n) < shared
        correct = np.where(common, difficulty < accuracy, rng.random(n) < accuracy)
        rungs.append(simulated_rung(name, step, per_1k, correct))
    return Assessment(
        created_at="2026-11-30T00:00:00+00:00",
        task=TaskSummary(
            name="sim",
            type="classification",
            file="sim.yaml",
            model="m",
            model_fingerprint="f",
            labels=["a", "b"],
            prompt={},
            seed=0,
            n_train=1000,
            n_validation=0,
            n_test=n,
            limit=None,
            data_hashes={},
        ),
        environment=Environment(
            device="cpu", precision="float32", cpu="sim", threads=1, python="3", torch="-", transformers="-", ladder="-"
        ),
        rungs=rungs,
    )


PROCEDURES = ("mcb", "holm", "max_t")  # mcb: as shipped; the others: decision_procedures.py


def ship_index(beaten: set[int], count: int) -> int:
    """The ladder policy: the first rung (ladder order) not clearly worse."""
    return next(i for i in range(count) if i not in beaten)


def shown_intervals(ladder: Any, chosen: int, measurement: Measurement) -> list[tuple[int, int, float, float]]:
    """The pairs the recommendation prints with a verdict, and their simultaneous intervals (a - b)."""
    from advisor.decision.claims import metric_value
    from advisor.decision.compare import compare_together

    rungs = ladder.rungs
    together = compare_together(rungs, "classification", ["a", "b"], "accuracy", measurement)
    values = [metric_value(r, "accuracy") for r in rungs]
    best = int(np.argmax(values))
    shown = []
    for i, rung in enumerate(rungs):
        if i == chosen:
            other = best
        else:
            beaters = [
                j
                for j in [best, *np.argsort(values)[::-1]]
                if j != i and together.gap(rungs[j], rung).clearly_positive()
            ]
            other = int(beaters[0]) if beaters else chosen
        if other != i:
            gap = together.gap(rung, rungs[other])
            shown.append((i, other, gap.ci_low, gap.ci_high))
    return shown


def run_scenario(truth: list[float], n: int, ladders: int, shared: float, seed: int) -> dict[str, Any]:
    """Each procedure on `ladders` simulated ladders: what it shipped, how often wrongly, interval coverage."""
    from advisor.decision.decide import DataFacts, decide
    from advisor.task.spec import ConstraintsSection, DecisionSection, FactsSection
    from benchmarks.decision_procedures import holm_beaten, max_t_beaten

    policy = DecisionSection()
    rng = np.random.default_rng(seed)
    names = [name for name, _, _ in RUNGS]
    rows: dict[str, dict[str, Any]] = {
        p: {"shipped": dict.fromkeys(names, 0), "step_up": 0, "wrong": 0, "missed": 0} for p in PROCEDURES
    }
    covered = intervals = all_covered = 0
    for index in range(ladders):
        ladder = simulated_ladder(truth, n, shared, rng)
        measurement = Measurement(seed=index)
        facts = DataFacts(n_train=1000, smallest_class=500)
        advice = decide(ladder, ConstraintsSection(), FactsSection(), policy, facts, measurement)
        assert advice.rung is not None
        correct = [np.array([r.correct for r in rung.records]) for rung in ladder.rungs]
        picks = {
            "mcb": names.index(advice.rung),
            "holm": ship_index(holm_beaten(correct, measurement), len(RUNGS)),
            "max_t": ship_index(max_t_beaten(correct, measurement), len(RUNGS)),
        }
        for procedure, chosen in picks.items():
            row = rows[procedure]
            row["shipped"][names[chosen]] += 1
            row["step_up"] += RUNGS[chosen][1] > 0
            row["wrong"] += any(truth[j] - truth[chosen] > policy.tolerance for j in range(chosen))
            row["missed"] += any(truth[j] - truth[chosen] > policy.tolerance for j in range(len(RUNGS)))
        shown = shown_intervals(ladder, picks["mcb"], measurement)
        hits = [low <= truth[i] - truth[j] <= high for i, j, low, high in shown]
        covered += sum(hits)
        intervals += len(hits)
        all_covered += all(hits)
    return {
        "truth": truth,
        "n": n,
        "ladders": ladders,
        "procedures": {
            p: {
                "shipped": row["shipped"],
                "step_up_rate": row["step_up"] / ladders,
                "wrong_ship_rate": row["wrong"] / ladders,
                "miss_rate": row["missed"] / ladders,
            }
            for p, row in rows.items()
        },
        "shown_interval_coverage": covered / max(intervals, 1),
        "shown_intervals_all_covered": all_covered / ladders,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ladders", type=int, default=200)
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--gap", type=float, default=0.10)
    parser.add_argument("--shared", type=float, default=0.6, help="share of answers decided by common difficulty")
    parser.add_argument("--name", default="decision_sim", help="the result file's name under benchmarks/results/")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    scenarios = []
    better = [TRUE_BASE] * len(RUNGS)
    better[[name for name, _, _ in RUNGS].index("lora")] = TRUE_BASE + args.gap
    for truth, label, seed in (
        ([TRUE_BASE] * len(RUNGS), "all equal", 0),
        (better, f"lora truly {args.gap:+.2f}", 10_000),
    ):
        for n in sizes:
            result = run_scenario(truth, n, args.ladders, args.shared, seed=seed + n)
            result["scenario"] = label
            scenarios.append(result)
            for procedure, row in result["procedures"].items():
                if label == "all equal":
                    said = f"a step up shipped in {row['step_up_rate']:6.1%} (target <= 5%)"
                else:
                    lora = row["shipped"]["lora"] / args.ladders
                    said = (
                        f"lora shipped in {lora:6.1%} (target >= 80% at n=300); wrong ship {row['wrong_ship_rate']:.1%}"
                    )
                print(f"{label:>16}, n={n:5}, {procedure:6}: {said}", flush=True)
            print(
                f"{'':>16}  shown intervals (mcb) cover the truth {result['shown_interval_coverage']:.1%} each, "
                f"all at once in {result['shown_intervals_all_covered']:.1%} of ladders",
                flush=True,
            )
    coverage = float(np.mean([s["shown_interval_coverage"] for s in scenarios]))
    together = float(np.mean([s["shown_intervals_all_covered"] for s in scenarios]))
    print(
        f"shown intervals (mcb): each covers its true difference {coverage:.1%} of the time (target 95% +/- 3); "
        f"all of a ladder's at once {together:.1%}"
    )
    path = write_result(
        args.name,
        {
            "benchmark": "decision_sim",
            "ladders": args.ladders,
            "shared": args.shared,
            "scenarios": scenarios,
            "shown_interval_coverage": coverage,
            "shown_intervals_all_covered": together,
            "seconds": time.perf_counter() - started,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
