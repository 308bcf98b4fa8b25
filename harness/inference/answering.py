"""From encoded prompts to Outputs: pick the likeliest label, or generate and keep the text.

Every rung that asks the model a question ends here, so all of them answer the same way. Prompts
arrive as (prefix, query) token pairs; those that share a prefix are run with its KV cache. Prompts
answered by different adapters of one model (`adapters`, as `advisor serve` batches them) share no
cached prefix: each row carries its whole prompt, the same tokens either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Literal, Protocol

from harness.errors import InputError
from harness.inference.engine import ChoiceRequest, Generation, TokenCallback
from harness.inference.prompts import PromptBuilder
from harness.types import Output

Mode = Literal["score", "generate"]
Prompt = tuple[Sequence[int], Sequence[int]]
"""(prefix shared with other prompts, the rest) as token ids."""


class AnsweringEngine(Protocol):
    """What answering needs of a model: batched choice scoring and greedy generation (the PyTorch engine of
    harness/inference/engine.py, or an exported graph's, harness/inference/onnx_engine.py)."""

    def score(
        self, requests: Sequence[ChoiceRequest], prefix: Sequence[int] = (), adapters: Sequence[str] | None = None
    ) -> list[list[float]]:
        """Each choice's summed log-probability after prefix + context, per request."""
        ...

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        prefix: Sequence[int] = (),
        adapters: Sequence[str] | None = None,
        on_token: TokenCallback | None = None,
    ) -> list[Generation]:
        """Greedy completions of prefix + each prompt."""
        ...


def by_prefix(prompts: Sequence[Prompt]) -> dict[tuple[int, ...], list[int]]:
    """Indices of the prompts grouped by their shared prefix."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, (prefix, _) in enumerate(prompts):
        groups[tuple(prefix)].append(index)
    return groups


def whole_prompts(encoded: Sequence[Prompt]) -> list[Prompt]:
    """Each prompt with its prefix moved into the query: nothing cached, the same tokens."""
    return [((), [*prefix, *query]) for prefix, query in encoded]


def label_scores(
    engine: AnsweringEngine,
    prompts: PromptBuilder,
    encoded: Sequence[Prompt],
    labels: Sequence[str],
    adapters: Sequence[str] | None = None,
) -> list[list[float]]:
    """Each label's log-likelihood (the sum over its answer tokens) after each prompt, in label order."""
    choices = tuple(prompts.choice_tokens(label) for label in labels)
    scores: list[list[float]] = [[] for _ in encoded]
    runs = whole_prompts(encoded) if adapters is not None else encoded
    for prefix, members in by_prefix(runs).items():
        requests = [ChoiceRequest(tuple(runs[i][1]), choices) for i in members]
        names = [adapters[i] for i in members] if adapters is not None else None
        for index, row in zip(members, engine.score(requests, prefix=prefix, adapters=names), strict=True):
            scores[index] = row
    return scores


def best_labels(
    prompts: PromptBuilder, encoded: Sequence[Prompt], scores: Sequence[Sequence[float]], labels: Sequence[str]
) -> list[Output]:
    """The label with the highest score per prompt; completion tokens are that label's tokens."""
    outputs = []
    for (head, query), row in zip(encoded, scores, strict=True):
        best = max(range(len(labels)), key=row.__getitem__)
        outputs.append(
            Output(
                text=labels[best],
                prompt_tokens=len(head) + len(query),
                completion_tokens=len(prompts.choice_tokens(labels[best])),
                latency_s=0.0,
                detail={"logprobs": {label: round(value, 4) for label, value in zip(labels, row, strict=True)}},
            )
        )
    return outputs


def answer_by_scoring(
    engine: AnsweringEngine,
    prompts: PromptBuilder,
    encoded: Sequence[Prompt],
    labels: Sequence[str],
    adapters: Sequence[str] | None = None,
) -> list[Output]:
    """The label with the highest log-likelihood; completion tokens are that label's tokens."""
    return best_labels(prompts, encoded, label_scores(engine, prompts, encoded, labels, adapters), labels)


def answer_by_generating(
    engine: AnsweringEngine,
    prompts: PromptBuilder,
    encoded: Sequence[Prompt],
    max_new_tokens: int,
    adapters: Sequence[str] | None = None,
) -> list[Output]:
    """A greedy completion; plain-text prompts stop at the end of the line."""
    stop = answer_stop(prompts)
    outputs: list[Output | None] = [None] * len(encoded)
    runs = whole_prompts(encoded) if adapters is not None else encoded
    for prefix, members in by_prefix(runs).items():
        queries = [runs[i][1] for i in members]
        names = [adapters[i] for i in members] if adapters is not None else None
        generations = engine.generate(queries, max_new_tokens=max_new_tokens, stop=stop, prefix=prefix, adapters=names)
        for index, generation in zip(members, generations, strict=True):
            outputs[index] = Output(
                text=generation.text.strip(),
                prompt_tokens=len(prefix) + len(runs[index][1]),
                completion_tokens=generation.completion_tokens,
                latency_s=0.0,
            )
    return [o for o in outputs if o is not None]


def answer_stop(prompts: PromptBuilder) -> tuple[str, ...]:
    """Where a generated answer ends besides the end-of-turn token: plain-text prompts end at the line's end."""
    return () if prompts.format.chat else ("\n",)


def resolve_mode(mode: str, labels: Sequence[str], rung: str) -> Mode:
    """`auto` scores when the task has labels and generates otherwise; `score` without labels is bad input."""
    if mode == "auto":
        return "score" if labels else "generate"
    if mode == "score" and not labels:
        raise InputError(f"rungs.{rung}.mode: 'score' needs labels (a classification task); use mode: generate")
    return "score" if mode == "score" else "generate"


def answer(
    engine: AnsweringEngine,
    prompts: PromptBuilder,
    encoded: Sequence[Prompt],
    labels: Sequence[str],
    mode: Mode,
    max_new_tokens: int,
    adapters: Sequence[str] | None = None,
) -> list[Output]:
    """Answer each encoded prompt in the given mode (each with its own adapter, when `adapters` names them)."""
    if mode == "score":
        return answer_by_scoring(engine, prompts, encoded, labels, adapters)
    return answer_by_generating(engine, prompts, encoded, max_new_tokens, adapters)
