"""FSDP for the training loop: a trainable model sharded over a launch's ranks the way accelerate's config says.

`accelerate launch --config_file examples/accelerate/fsdp.yaml` puts the FSDP settings into each rank's
environment (FSDP_VERSION, FSDP_AUTO_WRAP_POLICY, FSDP_OFFLOAD_PARAMS, ...). accelerate's own plugin reads
them and its wrap policy picks the units (each decoder layer, as peft's FSDP recipe does); each unit and
then the root are sharded with FSDP2's `fully_shard`. Every rank then holds 1/N of the weights, gradients
and optimizer state. The loop weights each rank's share of a batch by its part of the whole batch, so
gradients are summed over the ranks, not averaged; every rank then takes the step one process would take.

Ladder's loop does not run through `Accelerator.prepare` (it has its own batches, micro-batches,
checkpoints and evaluations), so only the plugin and the wrap policy are taken from accelerate. torch and
accelerate are imported lazily: a one-process run never loads either's distributed modules.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.distributed import weights_sharded
from harness.errors import InputError


def shard_for_training(model: Any) -> Any:
    """The model sharded over the launch's ranks (in place) when the launch asks for FSDP; else the model as is."""
    if not weights_sharded():
        return model
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy, get_module_children_bottom_up
    from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, MixedPrecisionPolicy, fully_shard

    plugin = FullyShardedDataParallelPlugin(fsdp_version=2)
    for asked, setting in (
        (plugin.activation_checkpointing, "fsdp_activation_checkpointing"),
        (plugin.cpu_ram_efficient_loading, "fsdp_cpu_ram_efficient_loading"),
    ):
        if asked:
            raise InputError(
                f"accelerate launch: {setting} is not supported by Ladder's training loop; set it to false "
                "(see examples/accelerate/fsdp.yaml)"
            )
    if isinstance(plugin.cpu_offload, CPUOffloadPolicy) and next(model.parameters()).device.type == "cpu":
        raise InputError(
            "accelerate launch: fsdp_offload_params moves each rank's shards from its GPU to CPU memory, but this "
            "run trains on the CPU; launch with examples/accelerate/fsdp.yaml"
        )
    plugin.set_auto_wrap_policy(model)
    settings: dict[str, Any] = {
        "reshard_after_forward": plugin.reshard_after_forward,
        "offload_policy": plugin.cpu_offload,
        "mp_policy": plugin.mixed_precision_policy or MixedPrecisionPolicy(),
    }
    wraps = fsdp2_prepare_auto_wrap_policy(plugin, model)
    if wraps is not None:
        for module in get_module_children_bottom_up(model)[:-1]:  # the root is sharded last, over what is left
            if wraps(module) and not isinstance(module, FSDPModule):
                fully_shard(module, **settings)
    fully_shard(model, **{k: v for k, v in settings.items() if k != "reshard_after_forward"})
    for module in model.modules():
        if isinstance(module, FSDPModule):
            # each rank's loss is already weighted by its share of the batch: sum the gradients, do not average
            # (a plain sum, which gloo supports, rather than NCCL's pre-multiplied one)
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)
    return model


def is_sharded(model: Any) -> bool:
    """Whether the model's weights are sharded over the ranks (forwards must then run on every rank in step)."""
    if not weights_sharded():
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Every weight whole, on the CPU, on rank 0 (empty elsewhere): every rank must call it (it all-gathers)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a sharded tensor (the tensor itself when it is not sharded)."""
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def shaped_like(reference: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """A saved shard put back as the reference's sharded tensor (a plain tensor stays plain)."""
    from torch.distributed.tensor import DTensor

    if isinstance(reference, DTensor) and part.shape == reference.to_local().shape:
        device = reference.to_local().device
        mesh, placements = reference.device_mesh, reference.placements
        return DTensor.from_local(
            part.to(device), mesh, placements, run_check=False, shape=reference.shape, stride=reference.stride()
        )
    return part
