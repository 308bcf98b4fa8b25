"""Checking an export against the model it came from: logits on a few of the task's own prompts.

Each prompt is followed by its gold answer's tokens, so the positions that answer a question are among
those compared. The reference is the merged PyTorch model's plain forward pass (no mask, no positions
given), the way the model is run outside Ladder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from harness.inference.onnx_engine import OnnxEngine
from harness.inference.prompts import PromptBuilder
from harness.types import Example
from tuning.export_card import Verification

CHECKED_EXAMPLES = 4


def check_rows(prompts: PromptBuilder, examples: Sequence[Example]) -> list[list[int]]:
    """The first few examples as the rung's prompt followed by the gold answer's tokens."""
    rows = []
    for example in examples[:CHECKED_EXAMPLES]:
        prefix, query = prompts.split(example)
        rows.append([*prefix, *query, *prompts.choice_tokens(example.target)])
    return rows


@torch.inference_mode()
def reference_logits(model: Any, rows: Sequence[Sequence[int]]) -> list[Any]:
    """The PyTorch model's logits at every position of each row (one row at a time: no padding)."""
    return [model(input_ids=torch.tensor([list(row)])).logits[0].float().numpy() for row in rows]


def verify(
    engine: OnnxEngine, rows: Sequence[Sequence[int]], reference: Sequence[Any], tolerance: float | None
) -> Verification:
    """The graph's logits against the reference on the same rows."""
    worst, agree, positions = 0.0, 0, 0
    for row, expected in zip(rows, reference, strict=True):
        got = engine.sequence_logits(row)
        worst = max(worst, float(np.abs(got - expected).max()))
        agree += int((got.argmax(-1) == expected.argmax(-1)).sum())
        positions += len(row)
    return Verification(
        examples=len(rows),
        positions=positions,
        max_abs_logit_delta=worst,
        top1_agreement=agree / max(positions, 1),
        tolerance=tolerance,
    )
