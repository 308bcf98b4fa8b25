"""`advisor estimate`: memory, time and dollars to fine-tune a model with full, LoRA and QLoRA, before any run.

The arithmetic lives in harness/estimates/ (tuning_memory.py, sharding.py, training_cost.py); this module
turns a request (a size or a model's config.json) into a report: the memory of each method, the way each
runs on each GPU (one GPU, DDP, FSDP, FSDP + CPU offload) with hours, dollars and its launch command
(launch.py), and the serving cost per 1k requests of each rung. Nothing is downloaded: a model id is
looked up only in a local folder or the Hugging Face cache. Its tables are advisor/report/estimate.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from advisor.measure.launch import Launch, launches
from harness.errors import InputError
from harness.estimates.model_shapes import KNOWN_SHAPES, ModelShape, parse_params, shape_for_params, shape_from_config
from harness.estimates.sharding import NODE_GPUS, UNITS_IN_FLIGHT
from harness.estimates.training_cost import TrainingOption
from harness.estimates.training_cost import estimate_costs as training_options
from harness.estimates.tuning_memory import (
    DEFAULT_MFU,
    FROZEN_BYTES,
    GB,
    HEADROOM,
    MAX_SERVING_BATCH,
    METHODS,
    QLORA_SLOWDOWN,
    GpuSpec,
    LoraTargets,
    MemoryBreakdown,
    Precision,
    fitting_gpus,
    gpu_specs,
    memory_estimate,
    serving_cost_per_1k,
)
from harness.inference.embedded import EMBEDDED_MODEL
from harness.pricing.prices import PriceTable, api_cost_per_1k, load_prices
from tuning.registry import method_names


def default_prompt_tokens() -> dict[str, int]:
    """Typical prompt lengths: an instruction, ~8 demonstrations, ~5 passages; tuned rungs reuse zero_shot's prompt."""
    return {"zero_shot": 150, "few_shot": 1000, "rag": 1200, "lora": 150, "qlora": 150, "full": 150}


class EstimateRequest(BaseModel):
    """What to estimate: a size (`params`) or a model (`model`), the training step, the GPUs and the rungs' prompts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: str | int | None = None
    model: str | None = None
    seq_len: int = Field(default=512, ge=1, le=1_048_576)
    batch_size: int = Field(default=1, ge=1, le=65_536)
    tokens: int = Field(default=10_000_000, ge=1)
    lora_r: int = Field(default=16, ge=1, le=4096)
    lora_targets: LoraTargets = "all-linear"
    gradient_checkpointing: bool | None = None  # None: on for qlora (as peft's k-bit recipe), off otherwise
    precision: Precision = "bf16"
    gpus: list[str] | None = None  # None: every GPU in the price table
    num_gpus: int | None = Field(default=None, ge=1, le=NODE_GPUS)  # None: the fewest GPUs that hold each method
    prompt_tokens: dict[str, int] = Field(default_factory=default_prompt_tokens)
    completion_tokens: int = Field(default=16, ge=0, le=1_000_000)
    pricing: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServingRow:
    """One rung's serving cost per 1000 requests: self-hosted at the cheapest GPU, and its API alternative."""

    rung: str
    prompt_tokens: int
    completion_tokens: int
    gpu: str | None
    gpus: int | None
    batch: int | None
    requests_per_second: float | None
    self_hosted_per_1k: float | None
    api_model: str
    api_per_1k: float


@dataclass(frozen=True)
class EstimateReport:
    """Everything `advisor estimate` prints; `to_json` gives its JSON form."""

    model: str
    shape: ModelShape
    seq_len: int
    batch_size: int
    tokens: int
    lora_r: int
    lora_targets: str
    precision: str
    gpus: list[GpuSpec]
    memory: dict[str, MemoryBreakdown]
    fits_on: dict[str, list[str]]
    training: list[TrainingOption]
    serving: list[ServingRow]
    prices_as_of: str
    assumptions: list[str]
    num_gpus: int | None
    launches: list[Launch]  # each command and the training rows it launches
    engine_gb: float  # the whole base as Ladder's engine holds it on every GPU, beside each training step


def make_request(**fields: Any) -> EstimateRequest:
    """Validate request fields; a problem is one line naming the option."""
    try:
        return EstimateRequest(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = "--" + "-".join(str(part) for part in first["loc"]).replace("_", "-")
        message = "unknown option" if first["type"] == "extra_forbidden" else first["msg"]
        raise InputError(f"{where}: {message} (got {first.get('input')!r})") from None


def run_estimate(request: EstimateRequest) -> EstimateReport:
    """Memory per method, fitting GPUs with hours and dollars, and serving cost per rung."""
    label, shape = resolve_shape(request)
    prices = load_prices(request.pricing)
    try:
        gpus = gpu_specs(prices, request.gpus)
    except InputError as error:
        raise InputError(f"--gpus: {error}") from None
    if not gpus:
        raise InputError("--gpus: expected at least one GPU (CPU entries of the price table are not GPUs)")
    memory: dict[str, MemoryBreakdown] = {
        method: memory_estimate(
            shape,
            method,
            seq_len=request.seq_len,
            batch_size=request.batch_size,
            gradient_checkpointing=_checkpointing(request, method),
            lora_r=request.lora_r,
            lora_targets=request.lora_targets,
            precision=request.precision,
        )
        for method in METHODS
    }
    engine = shape.params * FROZEN_BYTES[request.precision] / GB  # the base as Ladder's engine holds it
    training = training_options(shape, memory, gpus, request.tokens, num_gpus=request.num_gpus, base_gb=engine)
    return EstimateReport(
        model=label,
        shape=shape,
        seq_len=request.seq_len,
        batch_size=request.batch_size,
        tokens=request.tokens,
        lora_r=request.lora_r,
        lora_targets=request.lora_targets,
        precision=request.precision,
        gpus=gpus,
        memory=memory,
        fits_on=fitting_gpus(memory, gpus),
        training=training,
        serving=_serving(request, shape, gpus, prices),
        prices_as_of=prices.as_of.isoformat(),
        assumptions=_assumptions(request, prices),
        num_gpus=request.num_gpus,
        launches=launches(training),
        engine_gb=engine,
    )


def _checkpointing(request: EstimateRequest, method: str) -> bool:
    return request.gradient_checkpointing if request.gradient_checkpointing is not None else method == "qlora"


def resolve_shape(request: EstimateRequest) -> tuple[str, ModelShape]:
    """The model's shape from --params, or from the config.json of --model (local folder, file or HF cache)."""
    if (request.params is None) == (request.model is None):
        raise InputError("--params or --model: give exactly one (a size like 7B, or a model id or folder)")
    if request.params is not None:
        count = parse_params(request.params)
        return str(request.params), shape_for_params(count)
    name = str(request.model)
    if name == EMBEDDED_MODEL:
        return name, KNOWN_SHAPES["SmolLM2-135M"]
    config = find_config(name)
    return name, shape_from_config(_read_config(config), str(config))


def find_config(name: str) -> Path:
    """config.json of a local folder, a config file itself, or the newest cached snapshot of a hub id; no network."""
    local = Path(name).expanduser()
    if local.is_file():
        return local
    if local.is_dir():
        if (local / "config.json").is_file():
            return local / "config.json"
        raise InputError(f"--model {name}: the folder has no config.json; pass --params (like 7B) instead")
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        folder = hub_cache() / f"models--{name.replace('/', '--')}" / "snapshots"
        found = sorted(folder.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        if found:
            return found[-1]
    raise InputError(
        f"--model {name}: no config.json in a local folder or the Hugging Face cache (nothing is downloaded); "
        "pass --params (like 7B) instead"
    )


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it from the environment."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a readable JSON config ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of model settings")
    return data


def _serving(
    request: EstimateRequest, shape: ModelShape, gpus: Sequence[GpuSpec], prices: PriceTable
) -> list[ServingRow]:
    api_name, api_price = prices.api_price()
    _, hosted = prices.hosted_tuning_price()
    tuned_name, tuned_price = prices.api_price(hosted.inference_model) if hosted.inference_model else (None, None)
    tuned_rungs = set(method_names())
    rows = []
    for rung, prompt in request.prompt_tokens.items():
        if prompt < 0:
            raise InputError(f"--prompt-tokens {rung}: expected a count >= 0 (got {prompt})")
        estimates = [serving_cost_per_1k(shape, prompt, request.completion_tokens, gpu) for gpu in gpus]
        best = min((e for e in estimates if e is not None), key=lambda e: e.per_1k, default=None)
        name, price = (tuned_name, tuned_price) if rung in tuned_rungs and tuned_price else (api_name, api_price)
        rows.append(
            ServingRow(
                rung=rung,
                prompt_tokens=prompt,
                completion_tokens=request.completion_tokens,
                gpu=best.gpu if best else None,
                gpus=best.gpus if best else None,
                batch=best.batch if best else None,
                requests_per_second=best.requests_per_second if best else None,
                self_hosted_per_1k=best.per_1k if best else None,
                api_model=str(name),
                api_per_1k=api_cost_per_1k(prompt, request.completion_tokens, price),
            )
        )
    return rows


def _assumptions(request: EstimateRequest, prices: PriceTable) -> list[str]:
    steps = "on for qlora only" if request.gradient_checkpointing is None else str(request.gradient_checkpointing)
    wanted = request.num_gpus
    gpus_wanted = f"over the {wanted} GPUs of --num-gpus" if wanted and wanted > 1 else "with --num-gpus N"
    count_rule = f"--num-gpus {wanted}" if wanted else "the fewest GPUs that hold the step"
    return [
        f"Memory of one replica in GiB for one step of {request.seq_len} x {request.batch_size} tokens, flash "
        f"attention, gradient checkpointing {steps}; {request.precision} weights. full: weights, gradients and AdamW "
        "moments (8 bytes/param in pure bf16, LLaMA-Factory's rule of thumb); lora: frozen 16-bit weights, fp32 "
        "adapters and AdamW; qlora: nf4 with double quantisation (4.127 bits/param), bf16 adapters, paged 32-bit "
        "AdamW.",
        f"Ways, the cheapest that fits at most {HEADROOM:.0%} of each GPU's memory: one GPU (a whole replica); DDP "
        f"(a replica per GPU, {gpus_wanted}); FSDP (FULL_SHARD: 1/N of weights, gradients and optimizer "
        f"state per GPU, plus {UNITS_IN_FLIGHT} decoder layers and the embeddings gathered whole, plus the "
        "GPU's own activations); FSDP + CPU offload (that state in CPU RAM, the optimizer step on the CPU). "
        f"N: {count_rule}; one machine of at most {NODE_GPUS} GPUs. QLoRA under FSDP packs its 4-bit weights "
        "in the compute dtype (bnb_4bit_quant_storage), as peft's FSDP+QLoRA recipe does. Beside the step, "
        f"Ladder's engine holds the whole base in {request.precision} on every GPU (it answers the prompting rungs): "
        "LoRA on one GPU trains over those weights; a full copy, QLoRA's 4-bit base and every FSDP shard are memory "
        "of their own. A row that fits only without the engine's base is 'not yet' (a sharded engine is missing).",
        f"Time: 6N FLOPs per token for full, 4N for lora/qlora (+2N with checkpointing) at MFU "
        f"{DEFAULT_MFU['full']:.0%}/{DEFAULT_MFU['lora']:.0%} of datasheet bf16 peak; qlora {QLORA_SLOWDOWN}x slower "
        "(dequantisation); N GPUs take 1/N of the hours (CPU offload's transfers and CPU optimizer step not "
        "counted). Dollars: GPU-hours x on-demand price.",
        f"Serving: bf16 weights on up to 8 GPUs, continuous batching up to {MAX_SERVING_BATCH}, prefill "
        "compute-bound, decode bandwidth-bound, GPUs always busy; tuned rungs served with merged weights. "
        f"API: list prices (tuned rungs on the hosted fine-tuned model). Prices as of {prices.as_of.isoformat()}.",
    ]


def to_json(report: EstimateReport) -> dict[str, Any]:
    """The report as plain JSON data."""
    return {"kind": "estimate", **asdict(report)}


def cli_request(
    params: str | None,
    model: str | None,
    seq_len: int,
    batch_size: int,
    tokens: int,
    lora_r: int,
    gpus: Sequence[str] | str | None,
    num_gpus: int | None = None,
) -> EstimateRequest:
    """A request from command-line values: `--gpus` may be repeated or comma-separated."""
    if isinstance(gpus, str):
        gpus = [gpus]
    names = [part.strip() for entry in gpus or () for part in entry.split(",") if part.strip()] or None
    return make_request(
        params=params,
        model=model,
        seq_len=seq_len,
        batch_size=batch_size,
        tokens=tokens,
        lora_r=lora_r,
        gpus=names,
        num_gpus=num_gpus,
    )
