"""Padding-free batches: the same loss and gradients as padded ones, and rows that never see each other."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.tuning.test_tuning import LORA
from tuning.batch_loss import TrainRow, batch_loss
from tuning.methods import trainable_model
from tuning.options import LoraOptions
from tuning.packing import attention_mask_for, block_causal_mask, pack_rows, packing_supported

PREFIX = (1, 40, 41, 42, 43)
ROWS = [
    TrainRow((50, 51, 52, 53, 54, 55, 7, 8), 2),
    TrainRow((60, 61, 9), 1),
    TrainRow((70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 11, 12, 13), 3),
]


@pytest.fixture(scope="module")
def lora_model(tiny_model: Any) -> Any:
    """A LoRA model whose adapter weights are all non-zero, so every gradient carries information."""
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, parameter in _trainable(model):
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model


def _trainable(model: Any) -> list[tuple[str, torch.Tensor]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def _loss_and_gradients(model: Any, prefix: tuple[int, ...], packed: bool) -> tuple[Any, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    result = batch_loss(ROWS, model, 2, prefix, packed=packed)
    result.loss.backward()
    gradients = {name: p.grad.clone() for name, p in _trainable(model) if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return result, gradients


def test_rows_pack_into_one_sequence_with_their_own_positions() -> None:
    pack = pack_rows(ROWS[:2], start=5)
    assert pack.input_ids.tolist() == [[*ROWS[0].tokens, *ROWS[1].tokens]]
    assert pack.position_ids.tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 5, 6, 7]]
    assert pack.keep.tolist() == [5, 6, 9]  # the position before each completion token
    assert pack.targets.tolist() == [7, 8, 9]
    assert pack.target_rows.tolist() == [0, 0, 1]
    allowed = block_causal_mask(pack.rows, 2)[0, 0]
    assert allowed.shape == (11, 13)
    assert allowed[:, :2].all()  # everyone sees the prefix
    assert allowed[8, 2:].tolist() == [False] * 8 + [True, False, False]  # row 1 sees none of row 0
    assert allowed[3, 2:].tolist() == [True] * 4 + [False] * 7  # causal within row 0


@pytest.mark.parametrize("prefix", [(), PREFIX], ids=["no-prefix", "shared-prefix"])
@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_packed_loss_and_gradients_equal_padded(lora_model: Any, prefix: tuple[int, ...], kernel: str) -> None:
    lora_model.set_attn_implementation(kernel)
    try:
        assert packing_supported(lora_model)
        padded, padded_gradients = _loss_and_gradients(lora_model, prefix, packed=False)
        packed, packed_gradients = _loss_and_gradients(lora_model, prefix, packed=True)
    finally:
        lora_model.set_attn_implementation("sdpa")
    assert abs(float(packed.loss.detach()) - float(padded.loss.detach())) < 1e-5
    assert padded.padded_tokens > 0 and packed.padded_tokens == 0
    assert (packed.useful_tokens, packed.computed_tokens, packed.completion_tokens) == (
        padded.useful_tokens,
        padded.computed_tokens,
        padded.completion_tokens,
    )
    assert packed_gradients.keys() == padded_gradients.keys() and len(packed_gradients) > 0
    for name, gradient in padded_gradients.items():
        torch.testing.assert_close(packed_gradients[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("prefix", [(), PREFIX], ids=["no-prefix", "shared-prefix"])
def test_a_row_never_attends_to_another(lora_model: Any, prefix: tuple[int, ...]) -> None:
    def logits(rows: list[TrainRow]) -> torch.Tensor:
        pack = pack_rows(rows, start=len(prefix))
        from harness.inference.prefix_cache import expanded_cache
        from tuning.batch_loss import prefix_keys_values

        with torch.no_grad():
            cache = expanded_cache(prefix_keys_values(lora_model, prefix, "cpu"), 1) if prefix else None
            out = lora_model(
                input_ids=pack.input_ids,
                attention_mask=attention_mask_for(lora_model, block_causal_mask(pack.rows, len(prefix))),
                position_ids=pack.position_ids,
                cache=cache,
                use_cache=bool(prefix),
            ).logits[0]
        return out[pack.rows == 0]

    changed = [ROWS[0], TrainRow(tuple(t + 100 for t in ROWS[1].tokens), 1), ROWS[2]]
    first = logits(list(ROWS))
    torch.testing.assert_close(logits(changed), first, rtol=0, atol=0)
    # row 0 alone (no other rows at all) gives the same logits
    torch.testing.assert_close(logits([ROWS[0]]), first, rtol=1e-5, atol=1e-5)


def test_virtual_token_models_stay_padded(tiny_model: Any) -> None:
    from tuning.options import VirtualTokenOptions

    model = trainable_model("prompt_tuning", tiny_model, VirtualTokenOptions(num_virtual_tokens=2))
    assert not packing_supported(model)
    assert batch_loss(ROWS, model, 2, PREFIX, packed=True).padded_tokens > 0


def test_the_loop_packs_when_told_and_auto_keeps_the_cpu_padded(lora_model: Any) -> None:
    from tuning.loop import LoopSettings, accumulated_backward, uses_packing

    assert not uses_packing(lora_model, LoopSettings())  # "auto" packs on CUDA only: the CPU path stays as it was
    assert uses_packing(lora_model, LoopSettings(packing="on"))
    assert not uses_packing(lora_model, LoopSettings(packing="off"))
    results = {}
    for mode in ("off", "on"):
        settings = LoopSettings(micro_batch_tokens=32, packing=mode)  # type: ignore[arg-type]
        results[mode] = accumulated_backward(ROWS, lora_model, 2, PREFIX, settings)
        lora_model.zero_grad(set_to_none=True)
    assert results["off"].padded_tokens > 0 and results["on"].padded_tokens == 0
    assert abs(results["on"].loss - results["off"].loss) < 1e-5
    assert results["on"].useful_tokens == results["off"].useful_tokens
