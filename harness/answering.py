"""From encoded prompts to Outputs: pick the likeliest label, or generate and keep the text.

Every rung that asks the model a question ends here, so all of them answer the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from harness.engine import ChoiceRequest, Engine
from harness.prompts import PromptBuilder
from harness.types import Output

Mode = Literal["score", "generate"]


def answer_by_scoring(
    engine: Engine, prompts: PromptBuilder, encoded: Sequence[Sequence[int]], labels: Sequence[str]
) -> list[Output]:
    """The label with the highest log-likelihood; completion tokens are that label's tokens."""
    choices = tuple(prompts.choice_tokens(label) for label in labels)
    scores = engine.score([ChoiceRequest(tuple(ids), choices) for ids in encoded])
    outputs = []
    for ids, row in zip(encoded, scores, strict=True):
        best = max(range(len(labels)), key=row.__getitem__)
        outputs.append(
            Output(
                text=labels[best],
                prompt_tokens=len(ids),
                completion_tokens=len(choices[best]),
                latency_s=0.0,
                detail={"logprobs": {label: round(value, 4) for label, value in zip(labels, row, strict=True)}},
            )
        )
    return outputs


def answer_by_generating(
    engine: Engine, prompts: PromptBuilder, encoded: Sequence[Sequence[int]], max_new_tokens: int
) -> list[Output]:
    """A greedy completion; plain-text prompts stop at the end of the line."""
    stop = () if prompts.format.chat else ("\n",)
    generations = engine.generate(encoded, max_new_tokens=max_new_tokens, stop=stop)
    return [
        Output(text=g.text.strip(), prompt_tokens=len(ids), completion_tokens=g.completion_tokens, latency_s=0.0)
        for ids, g in zip(encoded, generations, strict=True)
    ]


def answer(
    engine: Engine,
    prompts: PromptBuilder,
    encoded: Sequence[Sequence[int]],
    labels: Sequence[str],
    mode: Mode,
    max_new_tokens: int,
) -> list[Output]:
    """Answer each encoded prompt in the given mode."""
    if mode == "score":
        return answer_by_scoring(engine, prompts, encoded, labels)
    return answer_by_generating(engine, prompts, encoded, max_new_tokens)
