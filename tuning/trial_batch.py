"""A search's trials trained together: one adapter per trial on one frozen base, each row routed to its trial.

When one trial's step cannot fill the card, a search trains several trials in one pass: the step's
rows run once per trial as consecutive blocks of one batch, so every frozen base layer runs once over
all of them (fewer, fuller kernels) while each block goes through its own trial's adapter (peft's
per-row adapter routing, the batched-LoRA idea of multi-adapter serving, applied to training). A
trial's loss depends on its own adapter only, so the backward of the blocks' summed means leaves in
each adapter exactly the gradient it would get alone; each trial then takes its own optimizer step
(tuning/training_run.py), with its own learning rate, judgements, early stopping and pruning.

What differs from running the trials one after another: floating-point summation order (curves
agree to about 1e-6 on CPU), dropout masks (drawn from one generator in a different order; LoRA's
default dropout is 0), and the validation judgements, which still run one trial at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import torch

from tuning.batch_loss import TrainRow, batch_loss
from tuning.loop import LoopSettings, StepResult, TrainingRun, micro_batches, uses_packing

FIRST_ADAPTER = "default"  # the name peft gives the adapter a method's wrap creates


def adapter_name(index: int) -> str:
    """The adapter of the team's `index`-th trial (from 0): the wrap's own, then one added per trial."""
    return FIRST_ADAPTER if index == 0 else f"trial-{index}"


def trial_adapters(model: Any, add: Callable[[Any, str], None], count: int, seed: int) -> list[str]:
    """The names of `count` adapters on a model a method's wrap made: the wrap's own, then `add`ed ones, each added
    from the same seed, so each starts where its trial alone would start."""
    names = [adapter_name(index) for index in range(count)]
    for name in names[1:]:
        torch.manual_seed(seed)
        add(model, name)
    return names


class AdapterTeam:
    """Several adapters of one model, trained in one pass: the rows of a batch's k-th block go through adapter k."""

    def __init__(self, model: Any, adapters: Sequence[str], pad_id: int, prefix: Sequence[int], settings: LoopSettings):
        from peft.tuners.lora import LoraLayer

        self.model = model
        self.adapters = list(adapters)
        self.pad_id = pad_id
        self.prefix = prefix
        self.settings = settings
        self._route: list[str] = []
        self._run_adapter: dict[int, str] = {}
        layers = [cast(torch.nn.Module, module) for module in model.modules() if isinstance(module, LoraLayer)]
        self._hooks = [layer.register_forward_pre_hook(self._routed, with_kwargs=True) for layer in layers]

    def trainable(self, adapter: str) -> list[tuple[str, torch.Tensor]]:
        """The adapter's weights, named as they are when its trial trains alone (checkpoints and saved adapters
        read the same either way)."""
        marker = f".{adapter}."
        own = []
        for name, parameter in self.model.named_parameters():
            if marker in name:
                parameter.requires_grad_(True)
                own.append((name.replace(marker, f".{FIRST_ADAPTER}."), parameter))
        return own

    def join(self, run: TrainingRun, adapter: str) -> None:
        """Which adapter answers for this run."""
        self._run_adapter[id(run)] = adapter

    def _routed(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if not self._route:  # outside `routing`: the model's active adapter answers, as peft decides
            return args, kwargs
        rows = len(args[0]) if args else len(kwargs["x"])
        per_block, left = divmod(rows, len(self._route))
        assert per_block and not left, f"{rows} rows cannot be split among {len(self._route)} adapters"
        kwargs["adapter_names"] = [name for name in self._route for _ in range(per_block)]
        return args, kwargs

    @contextmanager
    def routing(self, adapters: Sequence[str]) -> Iterator[None]:
        """While entered, a batch's rows form len(adapters) equal blocks, the k-th answered by adapters[k]."""
        before = self._route
        self._route = list(adapters)
        try:
            yield
        finally:
            self._route = before

    def focus(self, run: TrainingRun) -> Any:
        """While entered, every row goes through this run's adapter (the model answers as the trial alone)."""
        return self.routing([self._run_adapter[id(run)]])

    def backward(self, runs: Sequence[TrainingRun], rows: list[TrainRow]) -> list[StepResult]:
        """The step's backward for every run at once: the rows once per run, in micro-batches that keep the
        whole pass within the micro-batch budget."""
        names = [self._run_adapter[id(run)] for run in runs]
        copies = len(names)
        total = sum(row.completion for row in rows)
        packed = uses_packing(self.model, self.settings)
        losses = [0.0] * copies
        useful = computed = padded = 0
        with self.routing(names):
            for part in micro_batches(rows, max(1, self.settings.micro_batch_tokens // copies)):
                result = batch_loss(part, self.model, self.pad_id, self.prefix, packed=packed, copies=copies)
                weight = result.completion_tokens / total
                (result.loss.sum() * weight).backward()
                for index, value in enumerate(result.loss.detach().reshape(-1).tolist()):
                    losses[index] += value * weight
                useful += result.useful_tokens
                computed += result.computed_tokens
                padded += result.padded_tokens
        return [StepResult(loss, useful, computed, total, padded) for loss in losses]

    def close(self) -> None:
        """Take the routing hooks off the model."""
        for hook in self._hooks:
            hook.remove()
