"""What a tuned rung trains on: the task's prompt without the label list, then the answer's tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harness.inference.prompts import PromptBuilder
from harness.types import Example
from tuning.batch_loss import TrainRow


def tuned_prompts(task_prompts: PromptBuilder) -> PromptBuilder:
    """The prompt every tuned rung trains and answers with: the task's, without the label list.

    A tuned rung learns the labels: listing them in every prompt only costs tokens.
    """
    return PromptBuilder(task_prompts.tokenizer, replace(task_prompts.format, list_labels=False))


def shared_prefix(prompts: PromptBuilder, examples: Sequence[Example]) -> tuple[int, ...]:
    """The prompt prefix every example shares (the system turn), or () when they differ."""
    prefixes = {tuple(prompts.split(example)[0]) for example in examples}
    return next(iter(prefixes)) if len(prefixes) == 1 else ()


def training_rows(
    prompts: PromptBuilder, examples: Sequence[Example], max_length: int, prefix: Sequence[int] = ()
) -> list[TrainRow]:
    """Prompt (after the shared prefix) + answer tokens; loss on the answer only."""
    rows = []
    for example in examples:
        head, query = prompts.split(example)
        answer_tokens = prompts.choice_tokens(example.target)
        tokens = (*(() if prefix else head), *query, *answer_tokens)
        if len(prefix) + len(tokens) <= max_length:
            rows.append(TrainRow(tokens=tuple(tokens), completion=len(answer_tokens)))
    return rows
