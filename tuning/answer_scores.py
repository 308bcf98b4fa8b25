"""The log-likelihood of each of several answers after each prompt, every prompt run once.

Scoring k labels by running k rows of prompt + label repeats the prompt k times. Here the prompts run
once (after the shared prefix, itself run once), their keys and values are repeated for the k answers,
and only the answers' tokens run k times: with six labels of a few tokens after a thirty-token ticket,
about a quarter of the tokens. Gradients flow through the repeated keys and values into the prompt, so
the result is the same as scoring the full rows (tests/tuning/test_distill.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.inference.prefix_cache import expanded_cache
from tuning.batch_loss import prefix_keys_values


def answer_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    answers: Sequence[Sequence[int]],
    pad_id: int,
    prefix: Sequence[int] = (),
) -> torch.Tensor:
    """[len(prompts), len(answers)]: the summed log-probability of each answer's tokens after each prompt."""
    device = next(model.parameters()).device
    n, k, head = len(prompts), len(answers), len(prefix)
    cache = None
    if prefix:
        cache = expanded_cache(prefix_keys_values(model, prefix, device), n)
    width = max(len(p) for p in prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, prompt in enumerate(prompts):  # left-padded, so every prompt ends at the last column
        ids[row, width - len(prompt) :] = torch.tensor(list(prompt))
        mask[row, width - len(prompt) :] = 1
    prompt_mask = torch.cat([torch.ones((n, head), dtype=torch.long), mask], dim=-1)
    run = model(
        input_ids=ids.to(device),
        attention_mask=prompt_mask.to(device),
        position_ids=((mask.cumsum(-1) - 1).clamp(min=0) + head).to(device),
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    first = torch.log_softmax(run.logits[:, -1].float(), dim=-1)  # the prompt's last position: answer token 0
    repeated = _repeated_cache(run.cache, k)

    longest = max(len(a) for a in answers)
    answer_ids = torch.full((k, longest), pad_id, dtype=torch.long)
    answer_mask = torch.zeros((k, longest), dtype=torch.long)
    for row, answer in enumerate(answers):  # right-padded: padding after an answer cannot change it
        answer_ids[row, : len(answer)] = torch.tensor(list(answer))
        answer_mask[row, : len(answer)] = 1
    starts = (head + mask.sum(-1)).repeat_interleave(k)[:, None]
    run = model(
        input_ids=answer_ids.repeat(n, 1).to(device),  # row b * k + j: answer j after prompt b
        attention_mask=torch.cat([prompt_mask.repeat_interleave(k, 0), answer_mask.repeat(n, 1)], dim=-1).to(device),
        position_ids=(starts + torch.arange(longest)[None]).to(device),
        cache=repeated,
        use_cache=True,
    )
    later = torch.log_softmax(run.logits[:, :-1].float(), dim=-1)  # position t predicts answer token t + 1
    targets = answer_ids[:, 1:].repeat(n, 1).to(device)
    picked = later.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * answer_mask[:, 1:].repeat(n, 1).to(device)
    openings = first.gather(-1, answer_ids[:, 0].to(device)[None].expand(n, -1))
    return openings + picked.sum(-1).reshape(n, k)


def _repeated_cache(cache: Any, times: int) -> Any:
    """The cache with every row repeated `times` times in place (row b becomes rows b*times ... b*times+times-1)."""
    from transformers import DynamicCache

    repeated = DynamicCache()
    for index, layer in enumerate(cache.layers):
        repeated.update(layer.keys.repeat_interleave(times, 0), layer.values.repeat_interleave(times, 0), index)
    return repeated
