"""How long and how fast the training loop trains, and how often it judges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LoopSettings:
    """How long and how fast to train, and how often to judge."""

    epochs: int = 3
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_epochs: float = 0.5
    max_grad_norm: float = 1.0
    batch_tokens: int = 2048
    max_batch_size: int = 8
    # Activations cost about 1.8 MB per token for a 135M model: a step over more tokens than this runs
    # as micro-batches whose gradients add up to the whole batch's, so memory stays bounded.
    micro_batch_tokens: int = 512
    # Padding-free micro-batches (tuning/packing.py): "auto" packs on CUDA only (see `uses_packing`).
    packing: Literal["auto", "on", "off"] = "auto"
    evaluations_per_epoch: int = 1
    patience: float = 2.0  # epochs of evaluations without improvement before stopping
    extra_epochs: int = 0  # epochs a run may add past `epochs` while every epoch ends on its best evaluation
    checkpoint_every: int = 10
    seed: int = 0
