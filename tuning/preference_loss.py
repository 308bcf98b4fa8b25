"""The DPO objective (Rafailov et al., 2023) and IPO (Azar et al., 2023) on completion log-probabilities.

With policy log-probs pi_c, pi_r of the chosen and rejected answers and the reference's ref_c, ref_r:
    h = (pi_c - ref_c) - (pi_r - ref_r)
    sigmoid (DPO):  loss = -log sigmoid(beta * h)         (summed token log-probs)
    ipo:            loss = (h - 1 / (2 * beta)) ** 2      (mean token log-probs, as IPO defines it)
The implicit rewards are beta * (pi - ref); a pair counts as won when the chosen reward is the higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

LossType = Literal["sigmoid", "ipo"]


@dataclass(frozen=True)
class PreferenceLoss:
    """The batch's mean loss, and per pair the implicit rewards of the chosen and the rejected answer."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @property
    def accuracy(self) -> float:
        """Share of pairs whose chosen answer has the higher implicit reward."""
        return float((self.chosen_rewards > self.rejected_rewards).float().mean())

    @property
    def margin(self) -> float:
        """Mean chosen reward minus rejected reward."""
        return float((self.chosen_rewards - self.rejected_rewards).mean())


def preference_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
    loss_type: LossType = "sigmoid",
) -> PreferenceLoss:
    """The mean preference loss over a batch of pairs (one log-prob per answer)."""
    chosen = policy_chosen - reference_chosen
    rejected = policy_rejected - reference_rejected
    difference = chosen - rejected
    if loss_type == "sigmoid":
        losses = -torch.nn.functional.logsigmoid(beta * difference)
    else:
        losses = (difference - 1 / (2 * beta)) ** 2
    return PreferenceLoss(losses.mean(), beta * chosen.detach(), beta * rejected.detach())
