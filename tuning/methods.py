"""What the tuning methods share: the trainable copy of a base, the 4-bit base, LoRA's wrap (lora and qlora).

Each method's own wrap function lives beside its rung (tuning/ia3.py, tuning/full.py, ...).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any, Literal

import torch

from harness.distributed import weights_sharded
from tuning.options import LoraOptions, TuneConfig
from tuning.registry import get_method


def lora_config(r: int, alpha: int, dropout: float, target_modules: list[str] | str) -> Any:
    """A peft LoRA config for a causal LM."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM")


_QUANTIZED: dict[tuple[str, str], Any] = {}


def quantized_base(model_path: str, device: str) -> Any:
    """A module tree of its own over the one 4-bit base of this model: every trial, adapter and rung of the run
    shares the quantized weights (loading and quantizing them again would cost seconds and memory each time)."""
    key = (model_path, device)
    if key not in _QUANTIZED:
        _QUANTIZED[key] = _load_quantized(model_path, device)
    return sharing_weights(_QUANTIZED[key])


def _load_quantized(model_path: str, device: str) -> Any:
    """The base model in 4-bit nf4 with double quantisation; compute in float32 on CPU, bfloat16 on CUDA.

    bitsandbytes is imported here, lazily, so CPU-only imports of the project never need it.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute = torch.bfloat16 if device == "cuda" else torch.float32  # bf16 is many times slower on CPU
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
        # FSDP shards floating-point tensors only: the packed 4-bit values are stored in the compute dtype
        # (peft's FSDP + QLoRA recipe); a one-process run keeps bitsandbytes' uint8
        **({"bnb_4bit_quant_storage": compute} if weights_sharded() else {}),
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_path,
        quantization_config=quantization,
        dtype=compute,
        use_safetensors=True,
        device_map={"": device} if device == "cuda" else None,
    )
    for parameter in model.parameters():  # the quantized base stays frozen; only the adapter trains
        parameter.requires_grad = False
        if parameter.dtype.is_floating_point and not parameter.is_cuda:
            # The weights left unquantized (embeddings, norms: ~110 MB) still point into the safetensors file
            # the loader memory-mapped, and keep every page it read resident (~400 MB of a 135M model's
            # 540 MB file) beside the engine's own mapping. A copy of them lets the mapping go.
            parameter.data = parameter.data.clone()
    return model


def sharing_weights(model: Any) -> Any:
    """A copy of the model's modules that shares its weight tensors: an adapter can be put into the copy
    (peft replaces modules) while the weights, which an adapter never changes, stay in memory once.

    Whatever changes the copy's weights in place changes the original's: merge a private copy.
    """
    shared = {id(tensor): tensor for tensor in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo=shared)


def standalone_model(model: Any, exports_as: Literal["merged", "whole"] | None) -> Any:
    """A tuned model as one plain model: an adapter merged into a private copy (the adapter shares the base's
    weights with the run's engine, and merging writes them), a whole fine-tuned model as it is."""
    if exports_as == "whole":
        return model
    if exports_as == "merged":
        return copy.deepcopy(model).merge_and_unload()
    raise ValueError("this tuned model's method does not merge into one model")


def trainable_model(method: str, base: Any, options: TuneConfig, init_tokens: Sequence[int] = ()) -> Any:
    """Wrap the base so only the method's parameters train: a copy of it when the method trains its weights
    (full), else its modules over the same frozen weights (the quantized base is already one of those).

    `init_tokens` starts prompt tuning's virtual tokens from real token embeddings (the task's
    instruction), which trains far better than random vectors on small data.
    """
    spec = get_method(method)
    if spec.base == "quantized":
        own = base
    else:
        own = copy.deepcopy(base) if spec.artifact == "model" else sharing_weights(base)
    return spec.wrap(own, options, init_tokens)


def wrap_lora(model: Any, options: LoraOptions, init_tokens: Sequence[int]) -> Any:
    """A low-rank adapter on the target modules (over a full-precision or a 4-bit base)."""
    from peft import get_peft_model

    config = lora_config(options.r, options.lora_alpha, options.dropout, options.target_modules)
    return get_peft_model(model, config)


def add_lora(model: Any, options: LoraOptions, name: str) -> None:
    """Another low-rank adapter on the same target modules of a model `wrap_lora` made (a search's next trial)."""
    model.add_adapter(name, lora_config(options.r, options.lora_alpha, options.dropout, options.target_modules))


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count by their logical size (of a model not yet sharded:
    a shard of 4-bit weights no longer says it holds them)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    four_bit = sys.modules.get("bitsandbytes")  # not imported: no weight can be a 4-bit one
    total = 0
    for parameter in model.parameters():
        if four_bit is not None and isinstance(parameter, four_bit.nn.Params4bit):
            total += parameter.numel() * parameter.element_size() * 2  # two nf4 values per byte of any storage
        else:
            total += parameter.numel()
    return trainable, total
