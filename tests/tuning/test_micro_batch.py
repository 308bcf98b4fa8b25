"""The micro-batch finder on a simulated device, its cache, and accumulation's gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tuning.test_loop import rows_of
from tests.tuning.test_tuning import LORA
from tuning.loop import LoopSettings, accumulated_backward
from tuning.methods import trainable_model
from tuning.micro_batch import (
    CPU_MICRO_BATCH_TOKENS,
    MicroBatchCache,
    MicroBatchKey,
    cached_micro_batch_tokens,
    find_micro_batch_tokens,
    length_bucket,
    micro_batch_tokens,
)
from tuning.options import LoraOptions


class Device:
    """A simulated card: micro-batches above `memory` tokens run out of memory; a step costs `overhead`
    seconds plus its tokens at `per_token` seconds each (the overhead is what larger micro-batches amortize)."""

    def __init__(self, memory: int, overhead: float = 1.0, per_token: float = 1e-4):
        self.memory, self.overhead, self.per_token = memory, overhead, per_token
        self.tried: list[int] = []
        self.released = 0

    def trial(self, tokens: int) -> float:
        self.tried.append(tokens)
        if tokens > self.memory:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.overhead + tokens * self.per_token

    def release(self) -> None:
        self.released += 1


def test_grows_until_the_memory_limit_and_keeps_the_last_size_that_fitted() -> None:
    device = Device(memory=20_000, per_token=1e-6)  # throughput keeps improving: only memory stops it
    assert find_micro_batch_tokens(device.trial, 512, release=device.release) == 16_384
    assert device.tried == [512, 1024, 2048, 4096, 8192, 16_384, 32_768]
    assert device.released == 1  # the failed try's memory was given back, once


def test_stops_when_a_doubling_no_longer_pays_off() -> None:
    # overhead 0.1 s, 1e-4 s a token: 4096 -> 8192 tokens brings 11% more tokens per second, 8192 -> 16,384 6%
    device = Device(memory=10**9, overhead=0.1, per_token=1e-4)
    found = find_micro_batch_tokens(device.trial, 512, release=device.release)
    assert found == 8192 and device.tried[-1] == 16_384 and device.released == 0


def test_a_start_that_does_not_fit_is_halved_until_one_does() -> None:
    device = Device(memory=300)
    assert find_micro_batch_tokens(device.trial, 512, smallest=64, release=device.release) == 256
    assert device.tried[:2] == [512, 256]


def test_errors_other_than_out_of_memory_are_not_swallowed() -> None:
    def broken(tokens: int) -> float:
        raise ValueError("shapes do not match")

    with pytest.raises(ValueError):
        find_micro_batch_tokens(broken, 512)


def test_the_second_call_uses_the_cache_and_every_part_of_the_key_counts(tmp_path: Path) -> None:
    cache = MicroBatchCache(tmp_path / "micro_batches.json")
    key = MicroBatchKey("base-fp", "lora", length_bucket(300), "cuda:NVIDIA H200")
    device = Device(memory=5000, per_token=1e-6)
    assert cached_micro_batch_tokens(cache, key, device.trial, 512) == 4096
    tried = len(device.tried)
    assert cached_micro_batch_tokens(MicroBatchCache(cache.path), key, device.trial, 512) == 4096
    assert len(device.tried) == tried  # read back from the file: nothing measured again
    others = [
        MicroBatchKey("base-fp", "lora", length_bucket(1000), "cuda:NVIDIA H200"),
        MicroBatchKey("base-fp", "lora", 512, "cuda:NVIDIA H100 80GB HBM3"),
        MicroBatchKey("base-fp", "prefix", 512, "cuda:NVIDIA H200"),
        MicroBatchKey("other-fp", "lora", 512, "cuda:NVIDIA H200"),
    ]
    for other in others:
        assert other.text() != key.text() and cache.get(other) is None
    smaller = Device(memory=1500, per_token=1e-6)
    assert cached_micro_batch_tokens(cache, others[0], smaller.trial, 512) == 1024 and smaller.tried
    assert cache.get(key) == 4096 and cache.get(others[0]) == 1024  # both kept in the one file


def test_length_buckets_are_powers_of_two() -> None:
    assert [length_bucket(n) for n in (1, 64, 65, 300, 512, 513)] == [64, 64, 128, 512, 512, 1024]


def test_on_the_cpu_auto_keeps_todays_size_and_an_explicit_number_is_kept(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    cache = MicroBatchCache(tmp_path / "m.json")
    rows = rows_of(tiny_tokenizer)
    common: dict[str, Any] = {"cache": cache, "model_key": "fp", "method": "lora"}
    assert micro_batch_tokens("auto", tiny_model, rows, 2, (), **common) == CPU_MICRO_BATCH_TOKENS
    assert LoopSettings().micro_batch_tokens == CPU_MICRO_BATCH_TOKENS
    assert micro_batch_tokens(4096, tiny_model, rows, 2, (), **common) == 4096
    assert not cache.path.exists()  # nothing measured, nothing stored


@pytest.mark.parametrize("prefix", [(), (1, 7, 11)])
def test_one_large_micro_batch_and_several_accumulated_ones_give_the_same_loss_and_gradients(
    tiny_model: Any, tiny_tokenizer: Any, prefix: tuple[int, ...]
) -> None:
    rows = rows_of(tiny_tokenizer)[:6]
    torch.manual_seed(0)
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    trainable = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():  # LoRA's B starts at zero: give the adapter weights so every gradient is non-trivial
        for parameter in trainable:
            parameter.normal_(0, 0.05)

    def step(micro: int) -> tuple[float, list[torch.Tensor], int]:
        for parameter in trainable:
            parameter.grad = None
        settings = LoopSettings(micro_batch_tokens=micro)
        result = accumulated_backward(rows, model, 2, prefix, settings)
        assert all(p.grad is not None for p in trainable)
        return result.loss, [p.grad.clone() for p in trainable if p.grad is not None], result.useful_tokens

    whole_loss, whole_grads, whole_tokens = step(1_000_000)  # the batch in one micro-batch
    longest = max(len(r.tokens) for r in rows)
    split_loss, split_grads, split_tokens = step(longest)  # one row per micro-batch
    assert split_loss == pytest.approx(whole_loss, rel=1e-5) and split_tokens == whole_tokens
    for whole, split in zip(whole_grads, split_grads, strict=True):
        torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-6)
    for parameter in trainable:
        parameter.grad = None
