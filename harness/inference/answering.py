"""From encoded prompts to Outputs: pick the likeliest label, or generate and keep the text.

Every rung that asks the model a question ends here, so all of them answer the same way. Prompts
arrive as (prefix, query) token pairs; those that share a prefix are run with its KV cache.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from harness.errors import InputError
from harness.inference.engine import ChoiceRequest, Engine
from harness.inference.prompts import PromptBuilder
from harness.types import Output

Mode = Literal["score", "generate"]
Prompt = tuple[Sequence[int], Sequence[int]]
"""(prefix shared with other prompts, the rest) as token ids."""


def by_prefix(prompts: Sequence[Prompt]) -> dict[tuple[int, ...], list[int]]:
    """Indices of the prompts grouped by their shared prefix."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, (prefix, _) in enumerate(prompts):
        groups[tuple(prefix)].append(index)
    return groups


def answer_by_scoring(
    engine: Engine, prompts: PromptBuilder, encoded: Sequence[Prompt], labels: Sequence[str]
) -> list[Output]:
    """The label with the highest log-likelihood; completion tokens are that label's tokens."""
    choices = tuple(prompts.choice_tokens(label) for label in labels)
    scores: list[list[float]] = [[] for _ in encoded]
    for prefix, members in by_prefix(encoded).items():
        requests = [ChoiceRequest(tuple(encoded[i][1]), choices) for i in members]
        for index, row in zip(members, engine.score(requests, prefix=prefix), strict=True):
            scores[index] = row
    outputs = []
    for (head, query), row in zip(encoded, scores, strict=True):
        best = max(range(len(labels)), key=row.__getitem__)
        outputs.append(
            Output(
                text=labels[best],
                prompt_tokens=len(head) + len(query),
                completion_tokens=len(choices[best]),
                latency_s=0.0,
                detail={"logprobs": {label: round(value, 4) for label, value in zip(labels, row, strict=True)}},
            )
        )
    return outputs


def answer_by_generating(
    engine: Engine, prompts: PromptBuilder, encoded: Sequence[Prompt], max_new_tokens: int
) -> list[Output]:
    """A greedy completion; plain-text prompts stop at the end of the line."""
    stop = () if prompts.format.chat else ("\n",)
    outputs: list[Output | None] = [None] * len(encoded)
    for prefix, members in by_prefix(encoded).items():
        queries = [encoded[i][1] for i in members]
        generations = engine.generate(queries, max_new_tokens=max_new_tokens, stop=stop, prefix=prefix)
        for index, generation in zip(members, generations, strict=True):
            outputs[index] = Output(
                text=generation.text.strip(),
                prompt_tokens=len(prefix) + len(encoded[index][1]),
                completion_tokens=generation.completion_tokens,
                latency_s=0.0,
            )
    return [o for o in outputs if o is not None]


def resolve_mode(mode: str, labels: Sequence[str], rung: str) -> Mode:
    """`auto` scores when the task has labels and generates otherwise; `score` without labels is bad input."""
    if mode == "auto":
        return "score" if labels else "generate"
    if mode == "score" and not labels:
        raise InputError(f"rungs.{rung}.mode: 'score' needs labels (a classification task); use mode: generate")
    return "score" if mode == "score" else "generate"


def answer(
    engine: Engine,
    prompts: PromptBuilder,
    encoded: Sequence[Prompt],
    labels: Sequence[str],
    mode: Mode,
    max_new_tokens: int,
) -> list[Output]:
    """Answer each encoded prompt in the given mode."""
    if mode == "score":
        return answer_by_scoring(engine, prompts, encoded, labels)
    return answer_by_generating(engine, prompts, encoded, max_new_tokens)
