"""Choice scoring's rows: one example's context and every choice as its own block, and their tree-shaped mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ChoiceRequest:
    """Score each choice as a continuation of the context (token ids, already encoded)."""

    context: tuple[int, ...]
    choices: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class ScoringRow:
    """One example packed into one row: its tokens, positions, segments and what each choice predicts."""

    tokens: list[int]
    positions: list[int]
    segments: list[int]  # 0 = context, j + 1 = block of choice j
    targets: list[list[tuple[int, int]]]  # per choice: (row position, token it predicts)


def scoring_row(request: ChoiceRequest) -> ScoringRow:
    """The request as one row: the context, then each choice but its last token as a block of its own."""
    context = list(request.context)
    if not context:
        raise ValueError("a scoring request needs a non-empty context")
    tokens, positions, segments = list(context), list(range(len(context))), [0] * len(context)
    targets: list[list[tuple[int, int]]] = []
    for j, choice in enumerate(request.choices):
        if not choice:
            raise ValueError("a choice needs at least one token")
        start = len(tokens)
        block = list(choice[:-1])  # the last token is only predicted, never fed
        tokens.extend(block)
        positions.extend(range(len(context), len(context) + len(block)))
        segments.extend([j + 1] * len(block))
        predict_from = [len(context) - 1] + [start + i for i in range(len(block))]
        targets.append(list(zip(predict_from, choice, strict=True)))
    return ScoringRow(tokens, positions, segments, targets)


def tree_mask(segments: torch.Tensor) -> torch.Tensor:
    """(batch, 1, T, T) bool: causal, context visible to all, blocks blind to each other, pads inert."""
    width = segments.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    key, query = segments[:, None, :], segments[:, :, None]
    allowed = causal[None] & ((key == 0) | (key == query)) & (key >= 0) & (query >= 0)
    # a pad row that attends to nothing would give NaN; let it see itself (its output is unused)
    allowed |= torch.eye(width, dtype=torch.bool)[None]
    return allowed[:, None]
