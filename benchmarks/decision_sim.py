"""The recommendation policy measured on simulated ladders whose true accuracies are known.

Each ladder has seven rungs (zero_shot, few_shot, few_shot_similar, rag, lora, qlora, full) answering
the same n test examples. Answers are correlated the way real rungs' are: an example's latent
difficulty u ~ U(0, 1) decides every rung's answer with probability `shared` (correct when u < the
rung's true accuracy), and an independent draw decides it otherwise, so each rung's true accuracy is
exactly its set value and paired comparisons see realistic disagreement. The real policy
(`advisor.decide.decide`, real paired bootstrap and McNemar) picks a rung; the simulation counts:

- step-up rate: all rungs truly equal, how often something above the lowest rung ships;
- power: one rung truly `--gap` better (the adapter), how often it ships;
- wrong ship: how often the shipped rung is truly worse than a rung lower on the ladder by more
  than the tolerance; miss: how often a rung truly better than the shipped one by more than the
  tolerance exists;
- coverage: how often the paired 95 % interval of (rung - zero_shot) contains the true difference.

    python benchmarks/decision_sim.py [--ladders 200] [--sizes 100,300,1000] [--gap 0.10]
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
    from advisor.assessment import (
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
    from advisor.assessment import Assessment, Environment, TaskSummary

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


def run_scenario(truth: list[float], n: int, ladders: int, shared: float, seed: int) -> dict[str, Any]:
    """The policy on `ladders` simulated ladders: what it shipped, how often wrongly, interval coverage."""
    from advisor.compare import compare_pair
    from advisor.decide import DataFacts, decide
    from advisor.task import ConstraintsSection, DecisionSection, FactsSection

    policy = DecisionSection()
    rng = np.random.default_rng(seed)
    names = [name for name, _, _ in RUNGS]
    shipped: dict[str, int] = dict.fromkeys(names, 0)
    step_up = wrong = missed = covered = intervals = 0
    for index in range(ladders):
        ladder = simulated_ladder(truth, n, shared, rng)
        facts = DataFacts(n_train=1000, smallest_class=500)
        advice = decide(ladder, ConstraintsSection(), FactsSection(), policy, facts, Measurement(seed=index))
        assert advice.rung is not None
        chosen = names.index(advice.rung)
        shipped[advice.rung] += 1
        step_up += RUNGS[chosen][1] > 0
        wrong += any(truth[j] - truth[chosen] > policy.tolerance for j in range(chosen))
        missed += any(truth[j] - truth[chosen] > policy.tolerance for j in range(len(RUNGS)))
        base = ladder.rungs[0]
        for j, other in enumerate(ladder.rungs[1:], start=1):
            gap = compare_pair(other, base, "classification", ["a", "b"], "accuracy", Measurement(seed=index))
            covered += gap.paired.ci_low <= truth[j] - truth[0] <= gap.paired.ci_high
            intervals += 1
    return {
        "truth": truth,
        "n": n,
        "ladders": ladders,
        "shipped": shipped,
        "step_up_rate": step_up / ladders,
        "wrong_ship_rate": wrong / ladders,
        "miss_rate": missed / ladders,
        "interval_coverage": covered / intervals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ladders", type=int, default=200)
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--gap", type=float, default=0.10)
    parser.add_argument("--shared", type=float, default=0.6, help="share of answers decided by common difficulty")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    scenarios = []
    for n in sizes:
        equal = run_scenario([TRUE_BASE] * len(RUNGS), n, args.ladders, args.shared, seed=n)
        equal["scenario"] = "all equal"
        scenarios.append(equal)
        print(
            f"all equal, n={n:5}: a step up shipped in {equal['step_up_rate']:.1%} of {args.ladders} ladders "
            f"(target <= 5%); interval coverage {equal['interval_coverage']:.1%}",
            flush=True,
        )
    better = [TRUE_BASE] * len(RUNGS)
    better[RUNGS.index(next(r for r in RUNGS if r[0] == "lora"))] = TRUE_BASE + args.gap
    for n in sizes:
        result = run_scenario(better, n, args.ladders, args.shared, seed=10_000 + n)
        result["scenario"] = f"lora truly {args.gap:+.2f}"
        scenarios.append(result)
        print(
            f"lora {args.gap:+.2f}, n={n:5}: lora shipped in {result['shipped']['lora'] / args.ladders:.1%} "
            f"(target >= 80% at n=300); a truly worse rung shipped over a cheaper one in "
            f"{result['wrong_ship_rate']:.1%}; a truly better rung missed in {result['miss_rate']:.1%}; "
            f"interval coverage {result['interval_coverage']:.1%}",
            flush=True,
        )
    coverage = np.mean([s["interval_coverage"] for s in scenarios])
    print(f"interval coverage over every scenario: {coverage:.1%} (target 95% +/- 3)")
    path = write_result(
        "decision_sim",
        {
            "benchmark": "decision_sim",
            "ladders": args.ladders,
            "shared": args.shared,
            "scenarios": scenarios,
            "interval_coverage": float(coverage),
            "seconds": time.perf_counter() - started,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
