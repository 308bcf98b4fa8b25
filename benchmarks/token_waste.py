"""Which computed tokens are padding or repeated work: a tuned rung's epoch and its validation, before and after.

Counts the token positions the model runs, from the task's own tokens and the project's own batching
(no model is run): a training epoch (micro-batches, their padding, the shared prefix each one runs)
and the validation judgements that go with it. "Before" is the procedure of main at 821ee5b: batches
of up to 16 rows, a validation loss pass (the prompts and gold answers, padded) and a separate
scoring pass over every label once per epoch. "After" is the current default: batches of
`max_batch_size` rows, and judgements that read the loss from the same scoring pass that picks the
answers, `evaluations_per_epoch` times per epoch. Waste is padding, a prefix run again inside one
optimizer step, and the prompt tokens the loss pass ran again after the scoring pass ran them.

    python benchmarks/token_waste.py [--task examples/support_tickets/task.yaml]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, write_result


@dataclass
class Ledger:
    """Token positions run through the model, and which of them were not needed."""

    computed: int = 0
    padding: int = 0
    repeated: int = 0

    def add(self, other: Ledger, times: float = 1.0) -> None:
        self.computed += round(other.computed * times)
        self.padding += round(other.padding * times)
        self.repeated += round(other.repeated * times)

    def share(self) -> float:
        return (self.padding + self.repeated) / max(self.computed, 1)

    def row(self) -> dict[str, Any]:
        return {**self.__dict__, "wasted_share": round(self.share(), 4)}


def training_epoch(lengths: list[int], prefix: int, batch_tokens: int, max_batch: int, micro_tokens: int) -> Ledger:
    """One epoch of `tuning/loop.py`: left-padded micro-batches, the shared prefix run once per micro-batch."""
    from harness.inference.batching import token_budget_batches
    from tuning.batch_loss import TrainRow
    from tuning.loop import micro_batches

    ledger = Ledger()
    for batch in token_budget_batches(lengths, batch_tokens, max_batch):
        rows = [TrainRow(tuple(range(lengths[i])), 1) for i in batch]
        parts = micro_batches(rows, micro_tokens)
        for part in parts:
            width = max(len(r.tokens) for r in part)
            ledger.computed += width * len(part) + prefix
            ledger.padding += width * len(part) - sum(len(r.tokens) for r in part)
        ledger.repeated += prefix * (len(parts) - 1)  # the prefix is needed once per step: weights change per step
    return ledger


def scoring_pass(
    queries: list[int], choices: list[int], prefix: int, batch_tokens: int, max_batch: int, tight: bool
) -> Ledger:
    """harness/inference/engine.py scoring every label after each prompt: one row per prompt, the prefix once;
    `tight`: batches end before rows much shorter than their longest (the engine's batching now)."""
    from harness.inference.batching import token_budget_batches
    from harness.inference.engine import _FILL_TOKENS, _SLACK

    fed = sum(length - 1 for length in choices)  # a choice's last token is only predicted
    lengths = [q + fed for q in queries]
    ledger = Ledger(computed=prefix)
    slack, fill = (_SLACK, _FILL_TOKENS) if tight else (1.0, 0)  # untight: token_budget_batches' defaults
    for batch in token_budget_batches(lengths, batch_tokens, max_batch, slack=slack, fill=fill):
        width = max(lengths[i] for i in batch)
        ledger.computed += width * len(batch)
        ledger.padding += sum(width - lengths[i] for i in batch)
    return ledger


def loss_pass(rows: list[int], prompts: list[int], prefix: int, batch_tokens: int, max_batch: int) -> Ledger:
    """The old validation loss pass: prompt and gold answer per row; its prompts repeat the scoring pass's."""
    from harness.inference.batching import token_budget_batches

    ledger = Ledger()
    for batch in token_budget_batches(rows, batch_tokens, max_batch):
        width = max(rows[i] for i in batch)
        ledger.computed += width * len(batch) + prefix
        ledger.padding += sum(width - rows[i] for i in batch)
        ledger.repeated += prefix + sum(prompts[i] for i in batch)
    return ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, default=ROOT / "examples" / "support_tickets" / "task.yaml")
    args = parser.parse_args()

    from advisor.measure.prepare import AssessOptions, QuietHooks, prepare_run
    from tuning.options import LoraOptions
    from tuning.rows import shared_prefix, training_rows, tuned_prompts

    run = prepare_run(args.task, AssessOptions(), QuietHooks())
    context = run.context
    prompts = tuned_prompts(context.prompts)
    examples = (*context.train, *context.validation)
    prefix = len(shared_prefix(prompts, examples))
    train = [len(r.tokens) for r in training_rows(prompts, context.train, 512, shared_prefix(prompts, examples))]
    validation = context.validation
    queries = [len(prompts.split(e)[1]) for e in validation]
    gold = [len(prompts.choice_tokens(e.target)) for e in validation]
    choices = [len(prompts.choice_tokens(label)) for label in context.labels]
    after = LoraOptions()
    results: dict[str, Any] = {"benchmark": "token_waste", "task": str(args.task), "prefix_tokens": prefix}
    for name, max_batch, evaluations, old_validation in (
        ("before", 16, 1, True),
        ("after", after.max_batch_size, after.evaluations_per_epoch, False),
    ):
        epoch = training_epoch(train, prefix, 2048, max_batch, 512)
        judging = scoring_pass(queries, choices, prefix, 4096, 32, tight=not old_validation)
        if old_validation:
            judging.add(loss_pass([q + g for q, g in zip(queries, gold, strict=True)], queries, prefix, 2048, 16))
        total = Ledger()
        total.add(epoch)
        total.add(judging, evaluations)
        test_queries = [len(prompts.split(e)[1]) for e in run.test]
        test = scoring_pass(test_queries, choices, prefix, 4096, 32, tight=not old_validation)
        results[name] = {
            "training_epoch": epoch.row(),
            "validation_per_evaluation": judging.row(),
            "test_split_scoring": test.row(),
            "evaluations_per_epoch": evaluations,
            "epoch_with_validation": total.row(),
        }
        print(
            f"{name}: an epoch computes {total.computed} token positions, {100 * total.share():.1f}% padding or "
            f"repeated (training {100 * epoch.share():.1f}%, validation {100 * judging.share():.1f}% of "
            f"{judging.computed} per judgement, {evaluations} per epoch); answering the test split by scoring "
            f"computes {test.computed}, {100 * test.share():.1f}% padding"
        )
    print(f"wrote {write_result('token_waste', results)}")


if __name__ == "__main__":
    main()
