"""Contextual calibration on every prompting rung: calibrate off against on, what it costs, what `auto` picks.

On the shipped support-tickets example (or, with `--task clinc`, an N-intent slice of CLINC150), with the
real embedded model, each prompting rung that scores labels answers the test split with calibration off
and on; `auto`'s choice on the task's validation split is made as `advisor assess` makes it. Variants
that were considered and not shipped are measured beside them on the same answers: three content-free
inputs instead of two (the paper's "" added), and for few_shot_similar and rag the content-free input
placed in each example's own prompt (its own neighbours or passages) instead of an empty retrieval.

Every variant of a rung shares one memo of the model's answers, so the real prompts are scored once per
rung and each calibrated variant adds only its content-free prompts: their count, tokens and seconds
are what calibrating costs.

    nice -n 10 python benchmarks/calibration.py [--limit 64] [--task example|clinc] [--intents 20] [--no-own-context]

The numbers are written to benchmarks/results/calibration.json (calibration_clinc<N>.json for CLINC150).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.few_shot import FewShotConfig
from benchmarks.common import ROOT, write_result
from harness.inference.answerer import PromptParts
from harness.inference.content_free import CONTENT_FREE, CalibratedAnswerer
from harness.inference.memo import AnswerMemo, MemoAnswerer
from harness.inference.wrapped import WrappedAnswerer
from harness.label_scoring import LabelScoring, scores_labels
from harness.rungs import RungContext
from harness.types import Example, Record

EXAMPLE = ROOT / "examples" / "support_tickets" / "task.yaml"
THREE = ("N/A", "", "[MASK]")
CLINC_RUNGS = """\
rungs:
  - zero_shot
  - {rung: few_shot, k: 8, selection: fixed, balanced: true}
  - {rung: few_shot, name: few_shot_similar, k: 8, selection: similar}
  - {rung: rag, top_k: 4}
seed: 0
"""


def own_context(parts: PromptParts) -> PromptParts:
    """The content-free input in the example's own prompt: its demonstrations and passages."""
    return PromptParts(parts.example, parts.demos, parts.passages, parts.demos_shared)


class TimedAnswerer(WrappedAnswerer):
    """Another answerer, timed: behind a memo that holds every real answer, it times the content-free prompts."""

    def __init__(self, inner: Any):
        super().__init__(inner)
        self.seconds = 0.0

    def answer(self, parts: Any, labels: Any, mode: Any, max_new_tokens: int) -> Any:
        started = time.perf_counter()
        try:
            return self.inner.answer(parts, labels, mode, max_new_tokens)
        finally:
            self.seconds += time.perf_counter() - started


def calibrated_variant(predictor: Any, answers: AnswerMemo, inputs: Sequence[str], context_of: Any = None) -> Any:
    """The calibrated predictor over a copy of the uncalibrated answers, its content-free prompts timed."""
    shipped: CalibratedAnswerer = predictor.answerer  # every prompting rung keeps the answerer it asks
    memo = AnswerMemo()
    memo.outputs.update(answers.outputs)  # each variant scores its own content-free prompts
    under_memo = shipped.inner  # the memo the choice's context put in front of the model's answerer
    if not isinstance(under_memo, WrappedAnswerer):
        raise TypeError(f"a calibrated rung answers through a memo, not a {type(under_memo).__name__}")
    timed = TimedAnswerer(under_memo.inner)
    predictor.answerer = CalibratedAnswerer(
        MemoAnswerer(timed, memo), context_of or shipped.context_of, shipped.label_tokens, shipped.where, inputs
    )
    return predictor


def _timer(answerer: CalibratedAnswerer) -> TimedAnswerer:
    """The timer calibrated_variant put under a variant's memo."""
    memo = answerer.inner
    if isinstance(memo, WrappedAnswerer) and isinstance(memo.inner, TimedAnswerer):
        return memo.inner
    raise TypeError("a calibrated variant answers through a memo over a TimedAnswerer (calibrated_variant)")


def measure(predictor: Any, examples: Sequence[Example], context: RungContext) -> dict[str, Any]:
    """Accuracy, macro-F1, how often the commonest answer is given, and the content-free prompts' cost."""
    from harness.metrics.scoring import scorer_for
    from harness.metrics.task_metrics import point_metric

    started = time.perf_counter()
    outputs = predictor.predict(examples)
    seconds = time.perf_counter() - started
    scorer = scorer_for(context.task_type, context.labels)
    records = [Record(e, o, scorer(e, o)) for e, o in zip(examples, outputs, strict=True)]
    ((top, count),) = Counter(o.text for o in outputs).most_common(1)
    result = {
        "accuracy": round(point_metric(context.task_type, "accuracy", records, context.labels), 4),
        "macro_f1": round(point_metric(context.task_type, "macro_f1", records, context.labels), 4),
        "commonest_answer": {"label": top, "share": round(count / len(outputs), 3)},
        "seconds": round(seconds, 2),
        "prompt_tokens_per_request": round(sum(o.prompt_tokens for o in outputs) / len(outputs), 1),
        "answers": [o.text for o in outputs],
    }
    answerer = predictor.answerer
    if isinstance(answerer, CalibratedAnswerer):
        timed = _timer(answerer)
        result["content_free_prompts"] = answerer.content_free_prompts
        result["content_free_prompt_tokens"] = answerer.content_free_tokens
        result["content_free_seconds"] = round(timed.seconds, 2)
        priors = {tuple(sorted(o.detail["content_free"].items())) for o in outputs}
        result["contexts"] = len(priors)
        if len(priors) == 1:
            result["content_free_prior"] = dict(next(iter(priors)))
        del result["seconds"]  # the real answers came from the memo: only the content-free seconds mean anything
    return result


def rung_rows(run: Any, planned: Any, test: Sequence[Example], own: bool) -> dict[str, Any]:
    """One rung: off, on, the variants, and auto's choice on validation."""
    from harness.data.store import Store
    from harness.selection import chosen_config

    answers = AnswerMemo()
    context = replace(run.context, memo=answers)
    build = planned.type.build

    def on() -> Any:
        return build(planned.config.model_copy(update={"calibrate": "on"}), context)

    rows = {"off": measure(build(planned.config.model_copy(update={"calibrate": "off"}), context), test, context)}
    rows["on"] = measure(calibrated_variant(on(), answers, CONTENT_FREE), test, context)
    rows["on, 3 content-free inputs"] = measure(calibrated_variant(on(), answers, THREE), test, context)
    similar = isinstance(planned.config, FewShotConfig) and planned.config.selection == "similar"
    if own and (planned.type.kind == "rag" or similar):
        variant = calibrated_variant(on(), answers, CONTENT_FREE, own_context)
        rows["on, each example's own context"] = measure(variant, test, context)
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "store.sqlite") as store:
        started = time.perf_counter()
        chosen, choice = chosen_config(planned.type, planned.config, run.context, store, planned.name)
        values = {str(c.params.get("calibrate")): round(c.value, 4) for c in choice.choices} if choice else {}
        auto = {
            "chosen": chosen.model_dump().get("calibrate"),
            "metric": choice.metric if choice else None,
            "validation_examples": len(run.context.validation),
            "validation": values,
            "seconds": round(time.perf_counter() - started, 1),
        }
    base = rows["off"]
    for name, row in rows.items():
        if name != "off":
            row["changed_answers"] = sum(a != b for a, b in zip(row["answers"], base["answers"], strict=True))
    three = rows["on, 3 content-free inputs"]
    three["differs_from_two_inputs"] = sum(a != b for a, b in zip(three["answers"], rows["on"]["answers"], strict=True))
    for row in rows.values():
        del row["answers"]
    return {"variants": rows, "auto": auto}


def assess_task(task: Path, limit: int | None, store_dir: Path, own: bool) -> dict[str, Any]:
    """Every prompting rung of the task that scores labels."""
    from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run

    run = prepare_run(task, AssessOptions(store_path=store_dir / "store.sqlite"), QuietHooks())
    test = run.test[:limit] if limit else run.test
    result: dict[str, Any] = {"test_examples": len(test), "labels": len(run.context.labels), "rungs": {}}
    for planned in run.planned:
        config = planned.config
        if not isinstance(config, LabelScoring) or not scores_labels(config.mode, run.context.labels):
            continue
        started = time.perf_counter()
        result["rungs"][planned.name] = rung_rows(run, planned, test, own)
        print(f"  {planned.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return result


def clinc_task(folder: Path, intents: int) -> Path:
    """An `intents`-intent CLINC150 slice (10 train rows and 2 test rows per intent) with the prompting rungs."""
    from benchmarks.plan_accuracy import write_slice

    task = write_slice(folder, intents, intents * 10, 2, 1)
    head = task.read_text(encoding="utf-8").split("rungs:")[0]
    task.write_text(head + CLINC_RUNGS, encoding="utf-8")
    return task


def summary(result: dict[str, Any]) -> None:
    """The table: metric per rung and variant, and what calibrating cost."""
    print(f"\n{result['task']}: {result['test_examples']} test examples, {result['labels']} labels")
    print(
        f"{'rung':<17} {'variant':<31} {'acc':>6} {'mF1':>6} {'top':>5} {'changed':>7} {'cf prompts':>10} "
        f"{'cf tokens':>9} {'cf s':>6} {'s':>6}"
    )
    for rung, rows in result["rungs"].items():
        for name, row in rows["variants"].items():
            print(
                f"{rung:<17} {name:<31} {row['accuracy']:>6.3f} {row['macro_f1']:>6.3f} "
                f"{row['commonest_answer']['share']:>5.2f} {row.get('changed_answers', ''):>7} "
                f"{row.get('content_free_prompts', ''):>10} {row.get('content_free_prompt_tokens', ''):>9} "
                f"{row.get('content_free_seconds', ''):>6} {row.get('seconds', ''):>6}"
            )
        auto = rows["auto"]
        print(
            f"{rung:<17} auto: {auto['chosen']} on {auto['validation_examples']} validation examples "
            f"({auto['metric']} {auto['validation']}, {auto['seconds']} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["example", "clinc"], default="example")
    parser.add_argument("--intents", type=int, default=20, help="CLINC150 intents in the slice (--task clinc)")
    parser.add_argument("--limit", type=int, default=64, help="test examples (0: all)")
    parser.add_argument("--no-own-context", action="store_true", help="skip the per-example context variants")
    args = parser.parse_args()
    from advisor.cli.support import quiet_libraries
    from harness.environment import choose_placement, describe_hardware

    quiet_libraries()  # the CLI's quiet: no loading bars between the rows
    with tempfile.TemporaryDirectory() as folder:
        if args.task == "clinc":
            task, name = clinc_task(Path(folder), args.intents), f"calibration_clinc{args.intents}"
        else:
            task, name = EXAMPLE, "calibration"
        print(f"{args.task}:", flush=True)
        result = assess_task(task, args.limit or None, Path(folder), not args.no_own_context)
    result = {
        "task": args.task if args.task == "example" else f"CLINC150, {args.intents} intents",
        "hardware": describe_hardware(choose_placement("cpu")),
        "content_free": list(CONTENT_FREE),
        **result,
    }
    path = write_result(name, result)
    summary(result)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
