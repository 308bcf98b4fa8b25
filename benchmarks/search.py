"""Does the default search find the good region? Against a wide grid, on the example and on CLINC150.

For each data set, the lora rung is trained three ways on the same train/validation split, seed and
prompt, and every choice is made on validation:
- the search: the rung's default `search:` (Optuna TPE, successive halving on the validation metric);
- the grid: 6 log-spaced learning rates (1e-4 ... 3e-3), each trained for up to 8 epochs with the
  validation metric after every epoch; its pick is the best (learning rate, epoch) on validation;
- the oracle, beside them: the grid's best (learning rate, epoch) by *test* accuracy (what a search
  that peeked would report; no product path does this).
It reports the test accuracy of each pick and the wall time of the search and of the grid (the
grid's test evaluations, done only for the oracle, are timed apart and not counted).

    python benchmarks/search.py [--data example,clinc10] [--grid-epochs 8] [--learning-rates 6]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, require_dataset, write_result

CLINC_TASK = """\
name: clinc10
type: classification
instruction: Name the intent of the user's request.
prompt: {template: "Request: {input}"}
data: {train: train.jsonl, test: test.jsonl}
rungs: [{rung: lora, r: 16}]
forgetting: {enabled: false}
seed: 0
"""


# The default search of main at 821ee5b (4 trials over 1e-4..3e-3, up to 5 epochs, linear decay, successive
# halving on the validation metric after each epoch), measured on this machine: docs/measurement.md and the
# example's cold run of that commit.
BEFORE = {
    "example": {"test_accuracy": 0.823, "search_over_chosen_run": 3.0, "trial_seconds": 1256, "chosen_lr": 4.13e-4},
    "clinc10": {"test_accuracy": 0.965, "search_over_chosen_run": 2.07, "trial_seconds": 657, "chosen_lr": 5.5e-4},
}


class Quiet:
    """Progress hooks that print stages only."""

    def stage(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def rung_started(self, name: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def rung_finished(self, name: str) -> None:
        pass

    def training(self, rung: str, step: int, total: int, loss: float, tokens_per_s: float) -> None:
        pass

    def trial(self, rung: str, number: int, trials: int, params: dict[str, Any]) -> None:
        print(f"  {rung}: trial {number + 1} of {trials} {params}", flush=True)

    def evaluated(self, rung: str, epoch: float, loss: float, metric: float | None, metric_name: str) -> None:
        print(f"  {rung}: epoch {epoch:g} validation loss {loss:.3f} {metric_name} {metric}", flush=True)


def example_task(folder: Path) -> Path:
    """The shipped example with only its lora rung."""
    source = ROOT / "examples" / "support_tickets"
    for name in ("train.jsonl", "test.jsonl"):
        (folder / name).write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")
    body = (source / "task.yaml").read_text(encoding="utf-8").split("rungs:")[0]
    (folder / "task.yaml").write_text(body + "rungs: [{rung: lora, r: 16}]\nforgetting: {enabled: false}\nseed: 0\n")
    return folder / "task.yaml"


def clinc_task(folder: Path, intents: int, train_per_intent: int, test_per_intent: int) -> Path:
    """A slice of CLINC150: the first `intents` intents of its first domains, seeded samples of train and test."""
    data = json.loads(require_dataset("clinc150/data_full.json").read_text(encoding="utf-8"))
    domains = json.loads(require_dataset("clinc150/domains.json").read_text(encoding="utf-8"))
    wanted = [intent for domain in sorted(domains) for intent in domains[domain]][:intents]
    for split, per_intent in (("train", train_per_intent), ("test", test_per_intent)):
        rows = []
        for intent in wanted:
            texts = [text for text, label in data[split] if label == intent]
            rows += [(text, intent) for text in random.Random(f"0-{split}-{intent}").sample(texts, per_intent)]
        lines = [json.dumps({"id": f"{split}{i}", "text": t, "label": y}) for i, (t, y) in enumerate(rows)]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "task.yaml").write_text(CLINC_TASK, encoding="utf-8")
    return folder / "task.yaml"


def accuracy(predictor: Any, model: Any, examples: Any) -> float:
    """Test accuracy of a model through the rung's own prompt and answering."""
    from harness.inference.answering import answer

    encoded = [predictor.task.prompts.split(e) for e in examples]
    labels = predictor.task.context.labels
    outputs = answer(predictor.task.engine_for(model), predictor.task.prompts, encoded, labels, "score", 8)
    return sum(o.text == e.target for o, e in zip(outputs, examples, strict=True)) / len(examples)


def run_search(predictor: Any, test: Any) -> dict[str, Any]:
    started = time.perf_counter()
    predictor.prepare()
    seconds = time.perf_counter() - started
    result = predictor.search_result()
    if result is None:
        raise SystemExit("the lora rung ran no search: does the task file fix learning_rate and epochs?")
    chosen = result.chosen_trial()
    return {
        "test_accuracy": accuracy(predictor, predictor.engine().model, test),
        "seconds": seconds,
        "trial_seconds": result.seconds,
        "chosen": result.chosen_params,
        "chosen_best_epoch": chosen.best_epoch,
        "chosen_epochs_run": chosen.epochs_run,
        "warm_start": result.warm_start,
        "chosen_trial_seconds": chosen.seconds,
        "search_over_chosen_run": result.seconds / chosen.seconds,
        "trials": [
            {
                "params": t.params,
                "state": t.state,
                "validation": t.validation_metrics,
                "validation_loss": t.validation_losses,
                "epochs": t.evaluation_epochs,
                "seconds": t.seconds,
            }
            for t in result.trials
        ],
        "warnings": result.warnings,
    }


class GridRun(TypedDict):
    """One learning rate of the grid: its judgements after every epoch, and what it cost."""

    learning_rate: float
    validation: list[float]
    validation_loss: list[float]
    test: list[float]
    seconds: float


def run_grid(predictor: Any, test: Any, learning_rates: list[float], epochs: int) -> dict[str, Any]:
    """Each learning rate for `epochs` epochs; validation (and, for the oracle, test) after every epoch."""
    from tuning.loop import LoopSettings, Validation, train

    runs: list[GridRun] = []
    grid_seconds = 0.0
    prefix, rows, validation_rows = predictor.trainer.encoded_rows()
    for rate in learning_rates:
        config = predictor.config.model_copy(update={"learning_rate": rate, "epochs": epochs, "search": False})
        model = predictor.trainer.fresh_model(config)
        measure = predictor.trainer.validation_judge()
        tests: list[float] = []
        test_seconds = [0.0]

        def judge(model: Any, measure: Any = measure, tests: list[float] = tests, spent: list[float] = test_seconds):
            judgement = measure(model)
            started = time.perf_counter()
            tests.append(accuracy(predictor, model, test))  # the oracle only: not part of the grid's cost
            spent[0] += time.perf_counter() - started
            return judgement

        settings = LoopSettings(
            epochs=epochs,
            learning_rate=rate,
            batch_tokens=config.batch_tokens,
            max_batch_size=config.max_batch_size,
            evaluations_per_epoch=1,
            patience=epochs + 1,
            checkpoint_every=10**9,
            seed=predictor.task.context.seed,
        )
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            report = train(
                model,
                rows,
                Validation(validation_rows, judge, "accuracy"),
                settings,
                Path(folder) / "c",
                predictor.task.context.engine.pad_id,
                prefix=prefix,
            )
            seconds = time.perf_counter() - started - test_seconds[0]
        grid_seconds += seconds
        runs.append(
            {
                "learning_rate": rate,
                "validation": report.validation_metrics,
                "validation_loss": report.validation_losses,
                "test": tests,
                "seconds": seconds,
            }
        )
        print(f"  grid lr {rate:.2e}: validation {report.validation_metrics} test {tests} ({seconds:.0f} s)")
        del model
    cells = [
        (r["learning_rate"], e + 1, r["validation"][e], r["validation_loss"][e], r["test"][e])
        for r in runs
        for e in range(len(r["validation"]))
    ]
    by_validation = max(cells, key=lambda c: (c[2], -c[3]))
    by_test = max(cells, key=lambda c: c[4])
    return {
        "seconds": grid_seconds,
        "runs": runs,
        "best_by_validation": {"learning_rate": by_validation[0], "epoch": by_validation[1], "test": by_validation[4]},
        "oracle_best_by_test": {"learning_rate": by_test[0], "epoch": by_test[1], "test": by_test[4]},
    }


def bench(name: str, task: Path, learning_rates: list[float], epochs: int) -> dict[str, Any]:
    from advisor.measure.prepare import AssessOptions, prepare_run
    from advisor.measure.rung_builder import bound_rungs

    run = prepare_run(
        task, AssessOptions(rungs=("lora",), store_path=task.parent / ".advisor" / "store.sqlite"), Quiet()
    )
    with bound_rungs(run) as rungs:
        predictor = rungs.build(run.planned[0]).predictor  # as `advisor assess` builds it: the default search
        print(f"{name}: {len(run.context.train)} train, {len(run.context.validation)} validation, {len(run.test)} test")
        search = run_search(predictor, run.test)
        accuracy, seconds = search["test_accuracy"], search["trial_seconds"]
        print(f"  search: test {accuracy:.3f}, {seconds:.0f} s, chose {search['chosen']}")
        result = {
            "train": len(run.context.train),
            "validation": len(run.context.validation),
            "test": len(run.test),
            "search": search,
            "before": BEFORE.get(name),
        }
        if epochs > 0:
            grid = run_grid(predictor, run.test, learning_rates, epochs)
            result["grid"] = grid
            result["search_minus_grid_pick"] = search["test_accuracy"] - grid["best_by_validation"]["test"]
            result["search_time_share_of_grid"] = search["trial_seconds"] / grid["seconds"]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="example,clinc10")
    parser.add_argument("--grid-epochs", type=int, default=8, help="0: no grid (only the search, against BEFORE)")
    parser.add_argument("--learning-rates", type=int, default=6)
    parser.add_argument("--clinc-train-per-intent", type=int, default=30)
    parser.add_argument("--clinc-test-per-intent", type=int, default=20)
    args = parser.parse_args()
    count = args.learning_rates
    rates = [math.exp(math.log(1e-4) + i * (math.log(3e-3) - math.log(1e-4)) / (count - 1)) for i in range(count)]
    results: dict[str, Any] = {"benchmark": "search", "learning_rates": rates, "grid_epochs": args.grid_epochs}
    for name in args.data.split(","):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            if name == "example":
                task = example_task(root)
            else:
                task = clinc_task(root, 10, args.clinc_train_per_intent, args.clinc_test_per_intent)
            results[name] = bench(name, task, rates, args.grid_epochs)
        r = results[name]
        before = r["before"] or {}
        line = (
            f"{name}: search {r['search']['test_accuracy']:.3f} in {r['search']['trial_seconds']:.0f} s, "
            f"{r['search']['search_over_chosen_run']:.2f}x the chosen run"
        )
        if before:
            difference = r["search"]["test_accuracy"] - before["test_accuracy"]
            line += (
                f" | before (821ee5b) {before['test_accuracy']:.3f} in {before['trial_seconds']} s, "
                f"{before['search_over_chosen_run']:.2f}x | difference {difference:+.3f}"
            )
        if "grid" in r:
            line += (
                f" | grid pick {r['grid']['best_by_validation']['test']:.3f} in {r['grid']['seconds']:.0f} s | "
                f"oracle {r['grid']['oracle_best_by_test']['test']:.3f} | search - grid pick "
                f"{r['search_minus_grid_pick']:+.3f}, time share {r['search_time_share_of_grid']:.2f}"
            )
        print(line)
    print(f"wrote {write_result('search', results)}")


if __name__ == "__main__":
    main()
