"""Back-of-envelope fine-tuning arithmetic: memory, time and dollars for full, LoRA and QLoRA, and serving cost.

Pure formulas over a llama-like `ModelShape`; every constant below says where it comes from. They are
estimates for planning ("which GPU, roughly how many dollars"), not measurements: `advisor assess`
measures. "GB" here is GiB (2^30 bytes), the unit torch and nvidia-smi report.

The conventions reproduce the rule-of-thumb table in LLaMA-Factory's README ("Hardware Requirement",
estimated): full fine-tuning in pure bf16 about 8 bytes per parameter (7B: 60GB, 70B: 600GB), LoRA about
2 bytes per parameter (16GB / 160GB), 4-bit QLoRA about half a byte (6GB / 48GB); and the QLoRA paper
(Dettmers et al. 2023, arXiv:2305.14314): a 65B model fine-tuned on one 48 GB GPU. Defaults follow those
sources: sequence length 512 and batch size 1 (the paper's memory figure), flash/SDPA attention (no
seq x seq score matrix is kept), and no LoRA dropout copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.errors import InputError
from harness.estimates.model_shapes import ModelShape
from harness.pricing.prices import PriceTable, self_hosted_cost_per_1k

Method = Literal["full", "lora", "qlora"]
Precision = Literal["bf16", "mixed", "fp32"]
Optimizer = Literal["adamw", "adamw_8bit"]
LoraTargets = Literal["all-linear", "attention", "qv"]
METHODS: tuple[Method, ...] = ("full", "lora", "qlora")
GB = 2**30

# Bytes per parameter of full fine-tuning: (weights, gradients, AdamW's two moments).
# bf16 is LLaMA-Factory's `pure_bf16` row (8x GB); mixed is torch AMP: fp32 master weights plus the bf16
# copies autocast keeps during the forward pass, fp32 gradients and moments (their `bf16 or fp16` row, 18x GB).
FULL_BYTES = {"bf16": (2, 2, 4), "mixed": (6, 4, 8), "fp32": (4, 4, 8)}
FROZEN_BYTES = {"bf16": 2, "mixed": 2, "fp32": 4}  # a frozen weight needs no fp32 master copy
ACTIVATION_BYTES = {"bf16": 2, "mixed": 2, "fp32": 4}
# nf4 is 4 bits; double quantisation stores an 8-bit constant per 64 weights plus an fp32 constant per
# 256 of those: 8/64 + 32/(64*256) = 0.127 bits per parameter (QLoRA paper, section 3).
NF4_BYTES = (4 + 8 / 64 + 32 / (64 * 256)) / 8
CUDA_CONTEXT_GB = 1.0  # CUDA context, cuBLAS workspace and kernels: about 0.5-1 GB on recent GPUs
FRAGMENTATION = 0.05  # the caching allocator's reserved-but-unused share, typically 5-10%
HEADROOM = 0.9  # plan to use at most 90% of a GPU's memory
# Model FLOPs utilisation, an assumption: well-tuned pre-training reaches 40-50% on A100/H100, fine-tuning
# with short sequences and small batches less; LoRA lower still (many small adapter matmuls).
DEFAULT_MFU = {"full": 0.35, "lora": 0.30, "qlora": 0.30}
# QLoRA dequantises every frozen weight on each forward and backward pass. An assumed factor: this machine
# measured 1.26x on CPU (benchmarks/results/train_throughput.json); on GPUs, where the matmuls themselves are
# fast, dequantisation weighs more.
QLORA_SLOWDOWN = 1.4
SERVING_MFU = 0.4  # prefill matmuls are large: compute-bound
BANDWIDTH_EFFICIENCY = 0.6  # decode reaches 50-70% of peak memory bandwidth in vLLM/TGI-style servers
MAX_SERVING_BATCH = 256  # vLLM's default max_num_seqs

# Peak dense bf16 tensor TFLOPS (fp16 for T4, which has no bf16) and memory bandwidth in TB/s, from
# NVIDIA's datasheets (SXM parts for H100/H200/A100). A10G is AWS's A10 variant: A10's 125 TFLOPS is
# assumed. Keys are the price table's names.
GPU_PEAKS: dict[str, tuple[float, float]] = {
    "H100": (989.0, 3.35),
    "H200": (989.0, 4.8),
    "A100-80GB": (312.0, 2.039),
    "A100-40GB": (312.0, 1.555),
    "L40S": (362.0, 0.864),
    "A10G": (125.0, 0.6),
    "L4": (121.0, 0.3),
    "T4": (65.0, 0.32),
    "RTX-4090": (165.0, 1.008),
}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Peak training memory on one GPU, by what holds it, in GB (GiB)."""

    weights_gb: float
    adapter_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    overhead_gb: float
    total_gb: float
    method: Method
    trainable_params: int
    gradient_checkpointing: bool


def adapter_params(shape: ModelShape, r: int, targets: LoraTargets = "all-linear") -> int:
    """LoRA parameters: r x (in + out) for each targeted projection of each layer (peft's all-linear skips lm_head)."""
    names = {"all-linear": None, "attention": ("q_proj", "k_proj", "v_proj", "o_proj"), "qv": ("q_proj", "v_proj")}
    _check(targets, tuple(names), "lora_targets")
    chosen = names[targets] or tuple(shape.linear_shapes())
    return shape.layers * sum(r * (a + b) for name, (a, b) in shape.linear_shapes().items() if name in chosen)


def activation_bytes(shape: ModelShape, tokens: int, dtype_bytes: int, gradient_checkpointing: bool) -> float:
    """Memory autograd keeps for the backward pass of `tokens` (seq_len x batch) tokens, plus the logits.

    Per token and layer a llama block saves: the inputs and outputs of its two RMSNorms (4h), q and the
    attention output (2 x heads x head_dim), k and v (2 x kv_heads x head_dim; flash attention keeps no
    score matrix), and in the MLP gate, up, silu(gate) and their product (4 x intermediate). With
    gradient checkpointing only each layer's input (h) is kept, and one layer is recomputed at a time.
    Logits: the model-dtype tensor, its fp32 copy for the loss (bf16 only) and the fp32 log-softmax.
    """
    attention = 2 * shape.heads * shape.dim_per_head + 2 * shape.kv_heads * shape.dim_per_head
    per_layer = 4 * shape.hidden + attention + 4 * shape.intermediate
    kept = shape.layers * shape.hidden + per_layer if gradient_checkpointing else shape.layers * per_layer
    logits = shape.vocab * (dtype_bytes + (4 if dtype_bytes < 4 else 0) + 4)
    return tokens * ((kept + 2 * shape.hidden) * dtype_bytes + logits)


def memory_estimate(
    shape: ModelShape,
    method: Method,
    *,
    seq_len: int,
    batch_size: int,
    gradient_checkpointing: bool,
    lora_r: int = 16,
    lora_targets: LoraTargets = "all-linear",
    precision: Precision = "bf16",
    optimizer: Optimizer = "adamw",
) -> MemoryBreakdown:
    """Peak memory of one training step on one GPU.

    full: every weight trains (FULL_BYTES per parameter). lora: frozen weights in bf16 (2 bytes) and
    fp32 adapters with fp32 gradients and AdamW moments (peft upcasts adapters to fp32). qlora: the
    projections in nf4 with double quantisation (NF4_BYTES), embeddings and lm_head in bf16, bf16
    adapters and gradients, and paged 32-bit AdamW (the QLoRA paper's recipe). adamw_8bit stores the
    two moments in 2 bytes. Overhead: CUDA context plus allocator fragmentation.
    """
    _check(method, METHODS, "method")
    _check(precision, tuple(FULL_BYTES), "precision")
    _check(optimizer, ("adamw", "adamw_8bit"), "optimizer")
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size), ("lora_r", lora_r)):
        if value < 1:
            raise InputError(f"{name}: expected a positive integer (got {value})")
    n = shape.params
    if method == "full":
        trainable = n
        weight_bytes, grad_bytes, optimizer_bytes = FULL_BYTES[precision]
        weights, adapter = float(n * weight_bytes), 0.0
    else:
        trainable = adapter_params(shape, lora_r, lora_targets)
        if method == "lora":
            weights, adapter_bytes = float(n * FROZEN_BYTES[precision]), 4
        else:
            quantised = n * shape.linear_params() / shape.implied_params()
            weights = quantised * NF4_BYTES + (n - quantised) * FROZEN_BYTES[precision]
            adapter_bytes = 4 if precision == "fp32" else 2
        adapter, grad_bytes, optimizer_bytes = float(trainable * adapter_bytes), adapter_bytes, 8
    if optimizer == "adamw_8bit":
        optimizer_bytes = 2
    activations = activation_bytes(shape, seq_len * batch_size, ACTIVATION_BYTES[precision], gradient_checkpointing)
    gradients, optimizer_state = trainable * grad_bytes / GB, trainable * optimizer_bytes / GB
    subtotal = (weights + adapter + activations) / GB + gradients + optimizer_state
    overhead = CUDA_CONTEXT_GB + FRAGMENTATION * subtotal
    return MemoryBreakdown(
        weights_gb=weights / GB,
        adapter_gb=adapter / GB,
        gradients_gb=gradients,
        optimizer_gb=optimizer_state,
        activations_gb=activations / GB,
        overhead_gb=overhead,
        total_gb=subtotal + overhead,
        method=method,
        trainable_params=trainable,
        gradient_checkpointing=gradient_checkpointing,
    )


def fits(breakdown: MemoryBreakdown, gpu_memory_gb: float, headroom: float = HEADROOM) -> bool:
    """Whether one GPU holds the step with `headroom` of its memory."""
    return breakdown.total_gb <= headroom * gpu_memory_gb


def training_flops(
    shape: ModelShape, method: Method, tokens: int, *, trainable_params: int = 0, gradient_checkpointing: bool = False
) -> float:
    """FLOPs to train on `tokens` tokens.

    full: 6·N per token (forward 2N; backward 2N for activation gradients and 2N for weight gradients).
    lora/qlora: the frozen weights need no weight gradients, so 4·N, plus 6 per adapter parameter.
    Gradient checkpointing recomputes the forward pass: another 2·N.
    """
    _check(method, METHODS, "method")
    per_token = 6 * shape.params if method == "full" else 4 * shape.params + 6 * trainable_params
    if gradient_checkpointing:
        per_token += 2 * shape.params
    return float(per_token) * tokens


def training_time(
    shape: ModelShape,
    method: Method,
    tokens: int,
    gpu_tflops: float,
    mfu: float | None = None,
    *,
    trainable_params: int = 0,
    gradient_checkpointing: bool = False,
) -> float:
    """Seconds on one GPU: FLOPs / (peak x MFU), and QLoRA slower by its dequantisation (QLORA_SLOWDOWN)."""
    utilisation = DEFAULT_MFU[method] if mfu is None else mfu
    if gpu_tflops <= 0 or not 0 < utilisation <= 1:
        raise ValueError(f"gpu_tflops must be > 0 and mfu in (0, 1], got {gpu_tflops}, {utilisation}")
    flops = training_flops(
        shape, method, tokens, trainable_params=trainable_params, gradient_checkpointing=gradient_checkpointing
    )
    seconds = flops / (gpu_tflops * 1e12 * utilisation)
    return seconds * QLORA_SLOWDOWN if method == "qlora" else seconds


@dataclass(frozen=True)
class GpuSpec:
    """A GPU of the price table with its datasheet peaks (None when the table names a GPU we have no peaks for)."""

    name: str
    memory_gb: float
    per_hour: float
    tflops: float | None
    bandwidth_tbs: float | None


def gpu_specs(prices: PriceTable, names: Sequence[str] | None = None) -> list[GpuSpec]:
    """The named GPUs (all GPU entries when None; CPU entries are not GPUs and are skipped)."""
    chosen = [prices.gpu_price(name)[0] for name in names] if names else list(prices.gpus)
    peaks = {key.casefold(): value for key, value in GPU_PEAKS.items()}
    specs = []
    for name in dict.fromkeys(chosen):
        if name.casefold().startswith("cpu"):
            continue
        price = prices.gpus[name]
        tflops, bandwidth = peaks.get(name.casefold(), (None, None))
        specs.append(GpuSpec(name, price.memory_gb, price.per_hour, tflops, bandwidth))
    return specs


def fitting_gpus(
    breakdowns: Mapping[str, MemoryBreakdown], gpus: Sequence[GpuSpec], headroom: float = HEADROOM
) -> dict[str, list[str]]:
    """For each method, the GPUs that hold it alone."""
    return {method: [g.name for g in gpus if fits(b, g.memory_gb, headroom)] for method, b in breakdowns.items()}


@dataclass(frozen=True)
class ServingEstimate:
    """Batched serving of one request shape on `gpus` GPUs of one type, at full utilisation."""

    gpu: str
    gpus: int
    batch: int
    requests_per_second: float
    per_1k: float


def serving_cost_per_1k(
    shape: ModelShape,
    prompt_tokens: int,
    completion_tokens: int,
    gpu: GpuSpec,
    price_per_hour: float | None = None,
    max_gpus: int = 8,
) -> ServingEstimate | None:
    """USD per 1000 requests on `gpu` kept busy, from a roofline; None when no peaks or it needs over `max_gpus`.

    bf16 weights, tensor-parallel over the fewest of 1, 2, 4, 8 GPUs that hold them (compute, bandwidth
    and price scale with the count); continuous batching of up to MAX_SERVING_BATCH requests, as many
    as the KV cache (2 x layers x kv_heads x head_dim x 2 bytes per token) leaves room for. Prefill is
    compute-bound: 2·N FLOPs per prompt token at SERVING_MFU. Each decode step reads the weights once for
    the whole batch plus every request's KV cache at BANDWIDTH_EFFICIENCY of peak bandwidth, unless its
    2·N FLOPs per token take longer. Adapters are merged, so a tuned rung costs what its base model costs.
    """
    if gpu.tflops is None or gpu.bandwidth_tbs is None:
        return None
    weights = 2.0 * shape.params
    kv_per_token = 2 * shape.layers * shape.kv_heads * shape.dim_per_head * 2
    context = max(prompt_tokens + completion_tokens, 1)
    count, batch = 1, 0
    while count <= max_gpus:
        free = count * (HEADROOM * gpu.memory_gb - CUDA_CONTEXT_GB) * GB - weights
        batch = min(MAX_SERVING_BATCH, int(free // (kv_per_token * context))) if free > 0 else 0
        if batch >= 1:
            break
        count *= 2
    if batch < 1:
        return None
    compute = count * gpu.tflops * 1e12 * SERVING_MFU
    bandwidth = count * gpu.bandwidth_tbs * 1e12 * BANDWIDTH_EFFICIENCY
    prefill = 2 * shape.params * prompt_tokens / compute
    read = (weights + batch * kv_per_token * (prompt_tokens + completion_tokens / 2)) / bandwidth
    step = max(read, 2 * shape.params * batch / compute)
    rate = 1 / (prefill + completion_tokens * step / batch)
    hourly = count * (gpu.per_hour if price_per_hour is None else price_per_hour)
    return ServingEstimate(gpu.name, count, batch, rate, self_hosted_cost_per_1k(rate, hourly))


def _check(value: str, allowed: Sequence[str], field: str) -> None:
    if value not in allowed:
        raise InputError(f"{field}: expected one of {', '.join(allowed)} (got {value!r})")
