"""The memory a Ray task asks for (Ray's `memory=` resource, host RAM), so a node is not given more than it holds.

`--plan` times a rung's work but records no memory; the memory arithmetic is `advisor estimate`'s
(harness/estimates/tuning_memory.py), applied here to the run's loaded model. A task that trains on a CPU asks
for that estimate's peak for its method (full, lora or qlora) at the micro-batch it trains with, in fp32: on a
CPU the weights, adapter, gradients, optimizer state and activations all live in RAM. Any other task (a
prompting rung, or training on CUDA, where the GPU holds the training state) asks for the model's weights. The
estimate's fixed overhead (a CUDA context's 1 GB) stands in, on a CPU, for the worker process itself (torch,
transformers and the advisor imported: about 1 GB).
"""

from __future__ import annotations

from typing import Any

from advisor.task.rung_plan import PlannedRung
from harness.errors import InputError, RunError
from harness.estimates.model_shapes import ModelShape, shape_for_params, shape_from_config
from harness.estimates.tuning_memory import CUDA_CONTEXT_GB, GB, Method, memory_estimate
from harness.rungs import RungContext
from tuning.micro_batch import CPU_MICRO_BATCH_TOKENS
from tuning.options import TuneConfig
from tuning.registry import get_method, method_names


def task_memory(context: RungContext, planned: PlannedRung) -> int:
    """Bytes of RAM a task of this rung asks for (a rung on another local model is sized by the task's model)."""
    model = context.engine.model
    method = _method(planned)
    if method is None or context.device == "cuda":
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return int(weights + CUDA_CONTEXT_GB * GB)
    config = planned.config
    tokens = config.micro_batch_tokens if isinstance(config, TuneConfig) else "auto"
    estimate = memory_estimate(
        _shape(model),
        method,
        seq_len=tokens if isinstance(tokens, int) else CPU_MICRO_BATCH_TOKENS,
        batch_size=1,
        gradient_checkpointing=False,
        precision="fp32",
    )
    return int(estimate.total_gb * GB)


def check_fits(need: int, rung: str, node_memory: list[float]) -> None:
    """A task no node can hold would wait for one forever: say so instead."""
    largest = max(node_memory, default=0.0)
    if need > largest:
        raise RunError(
            f"rungs.{rung}: its Ray tasks need about {need / GB:.1f} GiB of memory (the estimate of "
            f"`advisor estimate`), and the largest node offers {largest / GB:.1f} GiB"
        )


def _method(planned: PlannedRung) -> Method | None:
    """The estimate's method for what the rung trains, from its tuning method's declaration; None when it trains
    nothing. A rung that is not a tuning method of its own (dpo, distill) trains a LoRA adapter."""
    kind = planned.type
    if not kind.changes_weights:
        return None
    if kind.kind in method_names():
        spec = get_method(kind.kind)
        if spec.artifact == "model":
            return "full"
        if spec.base == "quantized":
            return "qlora"
    return "lora"


def _shape(model: Any) -> ModelShape:
    """The loaded model's shape; a model whose config is not llama-like is sized by its parameter count."""
    try:
        return shape_from_config(model.config.to_dict())
    except InputError:
        return shape_for_params(sum(p.numel() for p in model.parameters()))
