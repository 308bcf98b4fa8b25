"""Which way a training step fits a GPU type: one GPU, DDP, FSDP, or FSDP with its state offloaded to CPU RAM.

One GPU and DDP keep a whole replica (the `MemoryBreakdown`) on every GPU. FSDP (FULL_SHARD) keeps 1/N
of the weights, adapters, gradients and optimizer state on each of N GPUs, and all-gathers the
parameters of one wrapped unit (a decoder layer) at a time. With CPU offload the sharded state lives in
CPU RAM and the optimizer steps there; the GPU keeps only what the step computes with.

Checked against published runs (docs/scale.md): peft's FSDP+QLoRA recipe trains Llama-2-70B on two
24 GB GPUs at 19.6 GB per GPU with CPU offload and 35.6 GB without; torchtune's distributed LoRA
recipe trains a 70B model on 8 A100s at 27.6 GiB per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.estimates.model_shapes import ModelShape
from harness.estimates.tuning_memory import (
    CUDA_CONTEXT_GB,
    FRAGMENTATION,
    GB,
    HEADROOM,
    NF4_BYTES,
    MemoryBreakdown,
)

Way = Literal["one GPU", "DDP", "FSDP", "FSDP + CPU offload"]
WAYS: tuple[Way, ...] = ("one GPU", "DDP", "FSDP", "FSDP + CPU offload")
# The FSDP launches are of one machine (accelerate's num_machines: 1); a node commonly holds 8 GPUs.
NODE_GPUS = 8
# FSDP unshards the layer it computes and prefetches the next one (forward and backward prefetch).
UNITS_IN_FLIGHT = 2


@dataclass(frozen=True)
class Placement:
    """How one method runs on one GPU type: the way, the GPU count, GPU memory per GPU and the CPU RAM it needs."""

    way: Way
    gpus: int
    per_gpu_gb: float
    cpu_ram_gb: float  # the offloaded state (all ranks' shards, on one machine); 0 without offload


def sharded_state_gb(breakdown: MemoryBreakdown) -> float:
    """What FSDP shards: weights, adapters, gradients and optimizer state.

    QLoRA's 4-bit weights count as they are: under FSDP they are packed into the compute dtype
    (bitsandbytes' bnb_4bit_quant_storage, peft's FSDP+QLoRA recipe), the same bytes in a tensor FSDP can shard.
    """
    return breakdown.weights_gb + breakdown.adapter_gb + breakdown.gradients_gb + breakdown.optimizer_gb


def gathered_gb(breakdown: MemoryBreakdown, shape: ModelShape) -> float:
    """Parameters (and, for full fine-tuning, gradients) FSDP holds unsharded at once on every GPU.

    UNITS_IN_FLIGHT decoder layers, and the root unit (embeddings, lm_head, final norm), which FSDP2
    keeps unsharded from the forward pass to the backward pass.
    """
    scale = shape.params / shape.implied_params()
    layer_linear = shape.linear_params() / shape.layers * scale
    layer = layer_linear + 2 * shape.hidden * scale
    root = max(0.0, shape.params - shape.layers * layer)
    quantised = layer_linear * shape.layers if breakdown.method == "qlora" else 0.0
    # bytes per parameter of the weights that are not quantised, from the breakdown itself
    plain = (breakdown.weights_gb * GB - quantised * NF4_BYTES) / max(1.0, shape.params - quantised)
    layer_weights = (layer_linear * NF4_BYTES + (layer - layer_linear) * plain if quantised else layer * plain) / GB
    root_weights = root * plain / GB
    if breakdown.method == "full":
        per_param_grad = breakdown.gradients_gb / shape.params
        layer_grads, root_grads = layer * per_param_grad, root * per_param_grad
    else:
        layer_grads, root_grads = breakdown.gradients_gb / shape.layers, 0.0
    adapter = breakdown.adapter_gb / shape.layers
    return UNITS_IN_FLIGHT * (layer_weights + adapter + layer_grads) + root_weights + root_grads


def fsdp_memory_gb(
    breakdown: MemoryBreakdown, shape: ModelShape, gpus: int, offload: bool, engine_gb: float = 0.0
) -> float:
    """Peak memory per GPU of one FSDP step over `gpus` GPUs; each rank keeps its own activations (and `engine_gb`
    beside the step: see `engine_beside`)."""
    resident = 0.0 if offload else sharded_state_gb(breakdown) / gpus
    working = resident + gathered_gb(breakdown, shape) + breakdown.activations_gb + engine_gb
    return CUDA_CONTEXT_GB + (1 + FRAGMENTATION) * working


def engine_beside(breakdown: MemoryBreakdown, base_gb: float, sharded: bool) -> float:
    """What Ladder's engine holds on every GPU beside the training step: the whole base in the compute dtype.

    It answers the prompting rungs and stays loaded for the run. A LoRA replica trains over the engine's own
    frozen weights (already counted in the step); a full fine-tune trains a copy, QLoRA its own 4-bit base,
    and under FSDP every method trains a sharded copy: then the engine's base is memory of its own.
    """
    return 0.0 if breakdown.method == "lora" and not sharded else base_gb


def place(
    breakdown: MemoryBreakdown,
    shape: ModelShape,
    gpu_memory_gb: float,
    gpus: int | None = None,
    headroom: float = HEADROOM,
    base_gb: float = 0.0,
) -> Placement | None:
    """The cheapest way that fits: a replica per GPU, else FSDP, else FSDP with CPU offload; None when none does.

    `gpus` None: the fewest GPUs of one machine that hold the step. A count: that many GPUs, so a replica
    that fits one GPU runs as DDP over them. `base_gb`: the whole base in the compute dtype, which Ladder's
    engine holds on every GPU beside the step (`engine_beside`); 0 for the step alone.
    """
    replica = breakdown.total_gb + engine_beside(breakdown, base_gb, sharded=False)
    if replica <= headroom * gpu_memory_gb:
        if gpus is None or gpus == 1:
            return Placement("one GPU", 1, replica, 0.0)
        return Placement("DDP", gpus, replica, 0.0)
    engine = engine_beside(breakdown, base_gb, sharded=True)
    for offload in (False, True):
        # without offload one GPU would be the replica itself; with it, the GPU count divides nothing
        counts = [gpus] if gpus is not None else range(1 if offload else 2, NODE_GPUS + 1)
        for count in counts:
            need = fsdp_memory_gb(breakdown, shape, count, offload, engine)
            if need <= headroom * gpu_memory_gb:
                way: Way = "FSDP + CPU offload" if offload else "FSDP"
                return Placement(way, count, need, sharded_state_gb(breakdown) if offload else 0.0)
    return None
