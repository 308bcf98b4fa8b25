"""The memory a Ray task asks for: what training its rung needs on this device, and a clear error when no node
holds it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from advisor.fanout.task_memory import check_fits, task_memory
from advisor.task.rung_plan import plan_rungs
from harness.errors import RunError
from harness.estimates.tuning_memory import GB


def test_a_task_that_trains_on_a_cpu_asks_for_its_training_memory_and_on_cuda_for_the_weights(tiny_model: Any) -> None:
    zero_shot, lora, wide, full = plan_rungs(
        ["zero_shot", "lora", {"rung": "lora", "name": "wide", "micro_batch_tokens": 4096}, "full"], "task.yaml"
    )
    cpu = SimpleNamespace(engine=SimpleNamespace(model=tiny_model), device="cpu")
    weights = sum(p.numel() * p.element_size() for p in tiny_model.parameters())
    asked = {p.name: task_memory(cpu, p) for p in (zero_shot, lora, wide, full)}  # type: ignore[arg-type]
    assert asked["zero_shot"] == weights + GB  # the worker process and the weights it loads
    assert asked["zero_shot"] < asked["lora"] < asked["wide"]  # activations grow with the micro-batch
    assert asked["lora"] < asked["full"]  # every weight's gradient and optimizer state
    cuda = SimpleNamespace(engine=SimpleNamespace(model=tiny_model), device="cuda")
    assert task_memory(cuda, full) == weights + GB  # type: ignore[arg-type]  # the GPU holds the training


def test_a_task_no_node_can_hold_is_refused_before_it_waits_forever() -> None:
    check_fits(2 * GB, "lora", [1.0 * GB, 3.0 * GB])
    with pytest.raises(RunError, match=r"rungs.lora: its Ray tasks need about 4.0 GiB .* largest node offers 3.0 GiB"):
        check_fits(4 * GB, "lora", [1.0 * GB, 3.0 * GB])
