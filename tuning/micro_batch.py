"""How many tokens one training micro-batch may hold on this device, found once and remembered.

On the CPU the loop keeps `CPU_MICRO_BATCH_TOKENS` (activations cost about 1.8 MB per token for a 135M
model; larger micro-batches bring the CPU no speed). On a GPU that size leaves the card idle, so the
finder measures: starting from the CPU size it doubles the micro-batch while one forward and backward
still fits in memory and its tokens per second still improve by `gain`, then keeps the last size that
paid off (Lightning's batch-size finder, not halving on every out-of-memory error while training). A
first size that does not fit is halved until one does. The answer is stored in a small JSON file keyed by
(model, method, sequence-length bucket, device), so a second run on the same store measures nothing.

The micro-batch size changes how a step's rows are split, never the step's gradient: the loop weights
each micro-batch's loss by its share of the batch's completion tokens (`tuning.loop.accumulated_backward`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.data.atomic import write_text_atomically
from tuning.batch_loss import TrainRow, batch_loss

CPU_MICRO_BATCH_TOKENS = 512  # tuning.loop.LoopSettings' default: the CPU path is unchanged
MAX_MICRO_BATCH_TOKENS = 262_144  # the finder never tries more (a guard, far above what pays off)
GAIN = 1.1  # a doubling must bring at least 10% more tokens per second to be kept

Trial = Callable[[int], float]
"""Runs one micro-batch of (about) N tokens forward and backward and returns its seconds; raises an
out-of-memory error when it does not fit."""


@dataclass(frozen=True)
class MicroBatchKey:
    """What the best micro-batch depends on."""

    model: str  # the base's fingerprint (weights, device placement, precision)
    method: str
    bucket: int  # sequence-length bucket: the longest row, rounded up to a power of two
    device: str  # e.g. "cuda:NVIDIA H200"

    def text(self) -> str:
        return f"{self.model}|{self.method}|{self.bucket}|{self.device}"


def length_bucket(longest: int) -> int:
    """The power of two at or above `longest` (64 at least): rows of similar length share a measurement."""
    bucket = 64
    while bucket < longest:
        bucket *= 2
    return bucket


def device_name(device: torch.device) -> str:
    """The device as the cache keys it: the card's name on CUDA (another card is another key)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says the device ran out of memory."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _release_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def find_micro_batch_tokens(
    trial: Trial,
    start: int = CPU_MICRO_BATCH_TOKENS,
    *,
    smallest: int = 64,
    largest: int = MAX_MICRO_BATCH_TOKENS,
    gain: float = GAIN,
    release: Callable[[], None] = _release_memory,
) -> int:
    """The micro-batch size (tokens) to train with: doubled from `start` while it fits and pays off.

    An out-of-memory error ends the growth (the memory is released and the last size that fitted is
    kept); a doubling that brings less than `gain` times the tokens per second ends it too (the smaller
    size is kept: as fast, less memory). When `start` itself does not fit it is halved until a size fits
    (down to `smallest`, which is returned even if it does not: training then reports the real error).
    """
    size = max(smallest, min(start, largest))
    rate = _rate(trial, size, release)
    while rate is None and size > smallest:
        size = max(smallest, size // 2)
        rate = _rate(trial, size, release)
    if rate is None:
        return size
    while size * 2 <= largest:
        bigger = _rate(trial, size * 2, release)
        if bigger is None or bigger < rate * gain:
            break
        size, rate = size * 2, bigger
    return size


def _rate(trial: Trial, size: int, release: Callable[[], None]) -> float | None:
    """Tokens per second of one micro-batch of `size` tokens; None when it does not fit."""
    try:
        seconds = trial(size)
    except Exception as error:  # only out-of-memory errors are expected; others are raised again
        if not is_out_of_memory(error):
            raise
        release()
        return None
    return size / max(seconds, 1e-9)


class MicroBatchCache:
    """Found micro-batch sizes in one JSON file: {key text: tokens}."""

    def __init__(self, path: Path):
        self.path = path

    def get(self, key: MicroBatchKey) -> int | None:
        value = self._read().get(key.text())
        return int(value) if isinstance(value, int) else None

    def put(self, key: MicroBatchKey, tokens: int) -> None:
        entries = {**self._read(), key.text(): tokens}
        write_text_atomically(self.path, json.dumps(entries, indent=1, sort_keys=True))  # old file or new, never half

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}


def cached_micro_batch_tokens(cache: MicroBatchCache, key: MicroBatchKey, trial: Trial, start: int) -> int:
    """The stored size for `key`, else found with `trial` and stored."""
    known = cache.get(key)
    if known is not None:
        return known
    found = find_micro_batch_tokens(trial, start)
    cache.put(key, found)
    return found


def micro_batch_tokens(
    setting: int | str,
    model: Any,
    rows: Sequence[TrainRow],
    pad_id: int,
    prefix: Sequence[int],
    *,
    cache: MicroBatchCache,
    model_key: str,
    method: str,
) -> int:
    """The micro-batch size training uses: an explicit number as given; "auto" is the CPU size off CUDA
    and the cached or measured size on CUDA."""
    if not isinstance(setting, str):
        return setting
    device = next(model.parameters()).device
    if device.type != "cuda" or not rows:
        return CPU_MICRO_BATCH_TOKENS
    longest = max(len(row.tokens) for row in rows)
    key = MicroBatchKey(model_key, method, length_bucket(longest), device_name(device))
    trial = training_trial(model, rows, pad_id, prefix, length=key.bucket)
    with torch.random.fork_rng(devices=[device]):  # measuring draws no randomness training would have drawn
        return cached_micro_batch_tokens(cache, key, trial, CPU_MICRO_BATCH_TOKENS)


def training_trial(
    model: Any, rows: Sequence[TrainRow], pad_id: int, prefix: Sequence[int], *, length: int, repeats: int = 2
) -> Trial:
    """A trial that runs a micro-batch of N tokens forward and backward as training does: rows of the
    bucket's length (the longest row's tokens repeated), one warm-up then `repeats` timed; gradients dropped."""
    template = max(rows, key=lambda row: len(row.tokens))
    tokens = (template.tokens * (length // len(template.tokens) + 1))[:length]
    row = TrainRow(tokens, min(template.completion, length - 1))
    trainable = [p for p in model.parameters() if p.requires_grad]

    def trial(size: int) -> float:
        batch = [row] * max(1, size // length)
        try:
            _forward_backward(batch, model, pad_id, prefix)  # warm-up: kernels chosen, memory pools grown
            torch.cuda.synchronize()
            began = time.perf_counter()
            for _ in range(repeats):
                _forward_backward(batch, model, pad_id, prefix)
            torch.cuda.synchronize()
            return (time.perf_counter() - began) / repeats
        finally:
            for parameter in trainable:
                parameter.grad = None

    return trial


def _forward_backward(batch: Sequence[TrainRow], model: Any, pad_id: int, prefix: Sequence[int]) -> None:
    # packed, as the loop trains on CUDA (LoopSettings.packing "auto"): a packed micro-batch's mask and kernels
    # differ from a padded one's, so the memory limit and the speed curve are those of packed steps
    # (batch_loss stays padded where the model cannot pack, as training does)
    batch_loss(batch, model, pad_id, prefix, packed=True).loss.backward()
