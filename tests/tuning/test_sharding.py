"""What an FSDP launch asks of the loop that it does not do is refused with one clear message, before any sharding.

The launch's settings are the environment `accelerate launch` gives each rank; the checks come before the
process group is used, so a tiny model in this process is enough.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import InputError
from tuning.sharding import is_sharded, shard_for_training

FSDP = {"WORLD_SIZE": "2", "RANK": "0", "ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}


@pytest.mark.parametrize(
    ("variable", "named"),
    [
        ("FSDP_OFFLOAD_PARAMS", "fsdp_offload_params"),  # a CPU run has no GPU to offload from
        ("FSDP_ACTIVATION_CHECKPOINTING", "fsdp_activation_checkpointing"),
        ("FSDP_CPU_RAM_EFFICIENT_LOADING", "fsdp_cpu_ram_efficient_loading"),
    ],
)
def test_a_setting_the_loop_does_not_apply_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Any, variable: str, named: str
) -> None:
    for key, value in {**FSDP, variable: "true"}.items():
        monkeypatch.setenv(key, value)
    if variable == "FSDP_CPU_RAM_EFFICIENT_LOADING":
        monkeypatch.setenv("FSDP_SYNC_MODULE_STATES", "true")  # accelerate's own rule for that setting
    with pytest.raises(InputError, match=named) as refused:
        shard_for_training(tiny_model)
    assert "examples/accelerate/fsdp.yaml" in str(refused.value)
    assert not is_sharded(tiny_model)


def test_outside_an_fsdp_launch_the_model_is_left_as_it_is(tiny_model: Any) -> None:
    assert shard_for_training(tiny_model) is tiny_model and not is_sharded(tiny_model)
