"""GPU check: LoRA and QLoRA training throughput, and batched scoring throughput (bf16 vs fp32), on one GPU.

The model is SmolLM2-135M's architecture (config and tokenizer copied from the converted model folder)
with random weights made on the device: the real weights (500 MB) do not travel to a lent GPU machine.
Speeds and memory do not depend on the weights; losses do (they show that training moves, nothing more).

Parts, each independent (an error in one is recorded in the JSON and the others still run):
- lora: the project's own step (tuning.loop.accumulated_backward, then clipping, the loop's learning-rate
  schedule and AdamW, as tuning.loop.train does it) over a bf16 base loaded by harness.inference.models
  and wrapped by tuning.methods.wrap_lora; with the loop's default batch settings and with GPU-sized
  ones; then one short run of tuning.loop.train itself (checkpoints and a validation pass included).
- qlora: the same step over tuning.methods.quantized_base (nf4, double quantisation, bf16 compute).
- eval: harness.inference.engine.Engine.score on classification-shaped requests with a shared prefix,
  bf16 and fp32, at the default batch budget (4096 tokens, 32 rows) and a large one.

If the project's code cannot be imported, training falls back to peft + torch driven the same way,
and the JSON says so ("code_path").

    python benchmarks/gpu_check.py [--out PATH] [--assets DIR] [--parts lora,qlora,eval] [--dry-run]

--dry-run builds a tiny model on the CPU and runs 2 steps of everything (an import and wiring check).
Useful training tokens count every real token a batch stands for, the shared prefix once per row;
scored tokens count prefix + context + choice tokens per request.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_ASSETS = ROOT / ".gpu_assets" / "smollm2-135m-instruct"
LORA_OPTIONS: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}
INSTRUCTION = "Route the ticket to the team that should handle it. Answer with the team's name only."
EPOCHS = 3  # passes over the synthetic rows at most (the learning-rate schedule spans them)
LABELS = ["billing", "technical issue", "account access", "shipping", "refunds", "sales", "security", "other"]

# ---- setup -------------------------------------------------------------------------------------


def prepare_model_folder(assets: Path, work: Path, device: str, tiny: bool) -> tuple[Path, dict[str, Any]]:
    """Copy config and tokenizer (un-gzipping), make random weights from the config on `device`, save them."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    folder = work / "model"
    folder.mkdir(parents=True, exist_ok=True)
    for path in assets.iterdir():
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as src, (folder / path.stem).open("wb") as dst:
                shutil.copyfileobj(src, dst)
        elif path.is_file():
            shutil.copy(path, folder / path.name)
    config = AutoConfig.from_pretrained(str(folder))
    if tiny:  # a wiring check on the CPU: same architecture, toy sizes
        config.hidden_size, config.intermediate_size, config.num_hidden_layers = 64, 128, 2
        config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 16
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(folder), safe_serialization=True)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    info = {
        "architecture": config.architectures[0] if config.architectures else config.model_type,
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "parameters": parameters,
        "weights": "random (initialised from the config on the device, saved as bf16 safetensors)",
        "setup_seconds": round(time.perf_counter() - started, 2),
    }
    return folder, info


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def shared_prefix(tokenizer: Any) -> tuple[int, ...]:
    """The system turn with the instruction, as the chat template writes it (what every row shares)."""
    try:
        ids = tokenizer.apply_chat_template([{"role": "system", "content": INSTRUCTION}], tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return tuple(int(i) for i in ids)
    except Exception:  # no chat template: the instruction's tokens
        return tuple(tokenizer(INSTRUCTION)["input_ids"])


def label_tokens(tokenizer: Any) -> list[tuple[int, ...]]:
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 2
    return [(*tokenizer(label, add_special_tokens=False)["input_ids"], int(end)) for label in LABELS]


def synthetic_bodies(count: int, vocab: int, seed: int, low: int = 16, high: int = 192) -> list[list[int]]:
    """Ticket-like prompt bodies: random token ids, lengths uniform in [low, high]."""
    rng = random.Random(seed)
    return [[rng.randrange(200, vocab) for _ in range(rng.randint(low, high))] for _ in range(count)]


def training_rows(count: int, vocab: int, labels: list[tuple[int, ...]], seed: int) -> list[Any]:
    """Rows whose answer (a label) is a function of the body's first token, so the loss can fall."""
    from tuning.batch_loss import TrainRow

    return [
        TrainRow((*body, *labels[body[0] % len(labels)]), len(labels[body[0] % len(labels)]))
        for body in synthetic_bodies(count, vocab, seed)
    ]


# ---- training ------------------------------------------------------------------------------------


def project_step() -> tuple[Callable[..., Any], Callable[[int, int, int], float], str]:
    """The project's step function and schedule, or the peft + torch fallback when they do not import."""
    try:
        if os.environ.get("GPU_CHECK_FORCE_FALLBACK"):
            raise ImportError("GPU_CHECK_FORCE_FALLBACK is set")
        from tuning.loop import accumulated_backward, learning_rate_factor

        return (
            accumulated_backward,
            learning_rate_factor,
            "ours: tuning.loop.accumulated_backward (+ loop's AdamW step)",
        )
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"

        def factor(step: int, warmup: int, total: int) -> float:
            return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))

        return fallback_backward, factor, f"FALLBACK direct peft + torch (project import failed: {reason})"


def fallback_backward(rows: Sequence[Any], model: Any, pad_id: int, prefix: Sequence[int], settings: Any) -> Any:
    """peft + torch the way our loop does it: left padding, logits only at answer positions, micro-batches."""
    from types import SimpleNamespace

    device = next(model.parameters()).device
    total = sum(r.completion for r in rows)
    parts: list[list[Any]] = [[]]
    for row in rows:
        longest = max([len(r.tokens) for r in parts[-1]] + [len(row.tokens)]) + len(prefix)
        if parts[-1] and longest * (len(parts[-1]) + 1) > settings.micro_batch_tokens:
            parts.append([])
        parts[-1].append(row)
    loss_sum, useful = 0.0, 0
    for part in parts:
        seqs = [(*prefix, *r.tokens) for r in part]
        width, longest = max(map(len, seqs)), max(r.completion for r in part)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        targets = torch.full((len(seqs), longest), -100, dtype=torch.long)
        for b, (seq, row) in enumerate(zip(seqs, part, strict=True)):
            ids[b, width - len(seq) :], mask[b, width - len(seq) :] = torch.tensor(seq), 1
            targets[b, longest - row.completion :] = torch.tensor(seq[-row.completion :])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            logits_to_keep=torch.arange(width - longest - 1, width - 1, device=device),
            use_cache=False,
        ).logits
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.to(device).reshape(-1), ignore_index=-100
        )
        weight = int((targets != -100).sum()) / total
        (loss * weight).backward()
        loss_sum += float(loss.detach()) * weight
        useful += int(mask.sum())
    return SimpleNamespace(loss=loss_sum, useful_tokens=useful, computed_tokens=useful, completion_tokens=total)


def loop_settings(**overrides: Any) -> Any:
    try:
        from tuning.loop import LoopSettings

        return LoopSettings(**overrides)
    except Exception:  # fallback: the same fields
        from types import SimpleNamespace

        base = {
            "learning_rate": 2e-4,
            "weight_decay": 0.0,
            "warmup_ratio": 0.1,
            "max_grad_norm": 1.0,
            "batch_tokens": 2048,
            "max_batch_size": 16,
            "micro_batch_tokens": 512,
            "seed": 0,
        }
        return SimpleNamespace(**{**base, **overrides})


def epoch_batches(rows: Sequence[Any], settings: Any) -> list[list[int]]:
    """The loop's batching: length-grouped within the token budget, in a seeded order."""
    from harness.inference.batching import token_budget_batches

    batches = token_budget_batches([len(r.tokens) for r in rows], settings.batch_tokens, settings.max_batch_size)
    random.Random(settings.seed * 1000).shuffle(batches)
    return batches


def timed_training(
    model: Any,
    rows: Sequence[Any],
    prefix: Sequence[int],
    pad_id: int,
    settings: Any,
    seconds: float,
    max_steps: int,
    warmup_steps: int,
    device: str,
) -> dict[str, Any]:
    """Steps as tuning.loop.train takes them, until `seconds` or `max_steps`; warm-up steps are not timed."""
    backward, lr_factor, code_path = project_step()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    batches = epoch_batches(rows, settings) * EPOCHS  # the same rows again if time remains after an epoch
    total_steps = min(len(batches), max_steps)
    warmup = max(1, int(total_steps * settings.warmup_ratio))
    model.train()
    losses: list[float] = []
    useful = computed = completion = 0
    timed_steps = 0
    _sync(device)
    _reset_peak(device)
    started = None
    for step, batch in enumerate(batches[:total_steps], start=1):
        if step == warmup_steps + 1:
            _sync(device)
            started = time.perf_counter()
        result = backward([rows[i] for i in batch], model, pad_id, prefix, settings)
        torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate * lr_factor(step - 1, warmup, total_steps)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(result.loss))
        if started is not None:
            timed_steps += 1
            useful += result.useful_tokens
            computed += result.computed_tokens
            completion += result.completion_tokens
            if time.perf_counter() - started > seconds:
                break
    _sync(device)
    elapsed = time.perf_counter() - started if started is not None else 0.0
    model.eval()
    return {
        "code_path": code_path,
        "settings": {
            k: getattr(settings, k) for k in ("batch_tokens", "max_batch_size", "micro_batch_tokens", "learning_rate")
        },
        "steps": len(losses),
        "warmup_steps_untimed": min(warmup_steps, len(losses)),
        "timed_steps": timed_steps,
        "timed_seconds": round(elapsed, 3),
        "useful_tokens": useful,
        "computed_tokens": computed,
        "completion_tokens": completion,
        "useful_tokens_per_s": round(useful / elapsed, 1) if elapsed else None,
        "computed_tokens_per_s": round(computed / elapsed, 1) if elapsed else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "final_loss": round(losses[-1], 4) if losses else None,
        "final_loss_mean_last5": round(sum(losses[-5:]) / len(losses[-5:]), 4) if losses else None,
        **_memory(device),
    }


def full_loop_run(model: Any, rows: Sequence[Any], prefix: Sequence[int], pad_id: int, device: str) -> dict[str, Any]:
    """One epoch of tuning.loop.train itself (checkpoints and a validation pass), on a few hundred rows."""
    from tuning.loop import LoopSettings, Validation, train

    settings = LoopSettings(epochs=1, checkpoint_every=10)
    split = max(1, len(rows) // 5)
    _reset_peak(device)
    with tempfile.TemporaryDirectory() as folder:
        report = train(
            model, rows[split:], Validation(rows[:split]), settings, Path(folder) / "ckpt", pad_id, prefix=prefix
        )
    return {
        "code_path": "ours: tuning.loop.train (1 epoch, default LoopSettings, checkpoint every 10 steps)",
        "train_rows": len(rows) - split,
        "validation_rows": split,
        "steps": report.steps,
        "seconds": round(report.seconds, 3),
        "useful_tokens": report.useful_tokens,
        "useful_tokens_per_s_incl_checkpoints_and_validation": round(report.useful_tokens / report.seconds, 1),
        "first_loss": round(report.train_losses[0], 4),
        "final_loss": round(report.train_losses[-1], 4),
        "validation_losses": [round(v, 4) for v in report.validation_losses],
        **_memory(device),
    }


def lora_model(base: Any) -> tuple[Any, str]:
    """A LoRA-wrapped copy of the base, as tuning.methods.trainable_model('lora', ...) makes it."""
    torch.manual_seed(0)
    try:
        from tuning.methods import wrap_lora

        return wrap_lora(copy.deepcopy(base), dict(LORA_OPTIONS), ()), "tuning.methods.wrap_lora(deepcopy(base))"
    except ImportError:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
        return get_peft_model(copy.deepcopy(base), config), "FALLBACK peft.get_peft_model(deepcopy(base))"


def load_base(folder: Path, device: str, dtype: Any) -> tuple[Any, str]:
    try:
        from harness.inference.models import ModelSource, load_model

        source = ModelSource(name="smollm2-135m-random", path=str(folder), fingerprint="gpu-check")
        return load_model(source, device, dtype), "harness.inference.models.load_model"
    except ImportError:
        from transformers import AutoModelForCausalLM

        model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True)
        return model.to(device).eval(), "FALLBACK AutoModelForCausalLM.from_pretrained"


def training_configs(dry: bool) -> list[tuple[str, dict[str, Any]]]:
    if dry:
        return [
            ("loop_defaults", {}),
            ("gpu_sized", {"batch_tokens": 4096, "max_batch_size": 64, "micro_batch_tokens": 4096}),
        ]
    return [
        ("loop_defaults", {}),  # what a tuned rung uses today: 2048-token steps in 512-token micro-batches
        ("gpu_sized", {"batch_tokens": 16384, "max_batch_size": 128, "micro_batch_tokens": 16384}),
    ]


def part_lora(ctx: dict[str, Any]) -> dict[str, Any]:
    device, dry = ctx["device"], ctx["dry"]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    base, loader = load_base(ctx["folder"], device, dtype)
    model, wrapper = lora_model(base)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out: dict[str, Any] = {
        "base_loader": loader,
        "wrapper": wrapper,
        "dtype": str(dtype).removeprefix("torch."),
        "trainable_parameters": trainable,
        "runs": {},
    }
    for name, overrides in training_configs(dry):
        if name not in ctx["train_configs"]:
            continue
        try:
            settings = loop_settings(**overrides)
            out["runs"][name] = timed_training(
                model,
                ctx["rows"],
                ctx["prefix"],
                ctx["pad_id"],
                settings,
                ctx["seconds"],
                max_steps=2 if dry else 10**6,
                warmup_steps=0 if dry else 3,
                device=device,
            )
        except Exception as error:
            out["runs"][name] = _error(error)
        ctx["checkpoint"]()
    try:
        if not ctx["full_loop"]:
            raise RuntimeError("skipped (--no-full-loop)")
        fresh, _ = lora_model(base)
        rows = ctx["rows"][: 24 if dry else 1024]
        out["full_loop"] = full_loop_run(fresh, rows, ctx["prefix"], ctx["pad_id"], device)
        del fresh
    except Exception as error:
        out["full_loop"] = _error(error)
    del model, base
    _free(device)
    return out


def part_qlora(ctx: dict[str, Any]) -> dict[str, Any]:
    device, dry = ctx["device"], ctx["dry"]
    import bitsandbytes

    from tuning.methods import quantized_base, wrap_lora

    _reset_peak(device)
    base = quantized_base(str(ctx["folder"]), device)
    load_memory = _memory(device)
    torch.manual_seed(0)
    model = wrap_lora(base, dict(LORA_OPTIONS), ())  # a quantized base is wrapped in place, as trainable_model does
    out: dict[str, Any] = {
        "bitsandbytes": bitsandbytes.__version__,
        "base_loader": "tuning.methods.quantized_base (nf4, double quant, bf16 compute on CUDA)",
        "wrapper": "tuning.methods.wrap_lora",
        "quantized_base_load_memory": load_memory,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "runs": {},
    }
    for name, overrides in training_configs(dry):
        if name not in ctx["train_configs"]:
            continue
        try:
            settings = loop_settings(**overrides)
            out["runs"][name] = timed_training(
                model,
                ctx["rows"],
                ctx["prefix"],
                ctx["pad_id"],
                settings,
                ctx["seconds"] * 0.75,
                max_steps=2 if dry else 10**6,
                warmup_steps=0 if dry else 3,
                device=device,
            )
        except Exception as error:
            out["runs"][name] = _error(error)
        ctx["checkpoint"]()
    del model, base
    _free(device)
    return out


# ---- evaluation ----------------------------------------------------------------------------------


def part_eval(ctx: dict[str, Any]) -> dict[str, Any]:
    from harness.inference.engine import ChoiceRequest, Engine

    device, dry = ctx["device"], ctx["dry"]
    header = tuple(ctx["tokenizer"]("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    bodies = synthetic_bodies(32 if dry else 4096, ctx["vocab"], seed=1)
    choices = tuple(ctx["labels"])
    requests = [ChoiceRequest(tuple(body) + header, choices) for body in bodies]
    prefix = ctx["prefix"]
    budgets = [("default_4096x32", 4096, 32)] + ([] if dry else [("large_32768x256", 32768, 256)])
    dtypes = [getattr(torch, name) for name in ctx["eval_dtypes"]]
    out: dict[str, Any] = {
        "code_path": "ours: harness.inference.engine.Engine.score (tree-masked choice blocks, shared prefix KV)",
        "requests": len(requests),
        "choices_per_request": len(choices),
        "prefix_tokens": len(prefix),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "runs": {},
    }
    for dtype in dtypes:
        name = str(dtype).removeprefix("torch.")
        try:
            model, _ = load_base(ctx["folder"], device, dtype)
        except Exception as error:
            out["runs"][name] = _error(error)
            continue
        for label, tokens, size in budgets:
            key = f"{name}/{label}"
            try:
                engine = Engine(model, ctx["tokenizer"], max_batch_tokens=tokens, max_batch_size=size)
                out["runs"][key] = timed_scoring(engine, requests, prefix, ctx["seconds"] / 4, device, dry)
            except Exception as error:
                out["runs"][key] = _error(error)
            ctx["checkpoint"]()
        del model
        _free(device)
    bf, fp = out["runs"].get("bfloat16/default_4096x32", {}), out["runs"].get("float32/default_4096x32", {})
    if bf.get("first_scores") and fp.get("first_scores"):
        out["bf16_vs_fp32_max_abs_logprob_diff_first_requests"] = round(
            max(
                abs(a - b)
                for x, y in zip(bf["first_scores"], fp["first_scores"], strict=True)
                for a, b in zip(x, y, strict=True)
            ),
            4,
        )
    return out


def timed_scoring(
    engine: Any, requests: Sequence[Any], prefix: Sequence[int], seconds: float, device: str, dry: bool
) -> dict[str, Any]:
    """Score chunks of requests until `seconds`; the first chunk (prefix KV, kernels) is a warm-up, untimed."""
    warm = requests[: 8 if dry else 64]
    first = engine.score(warm, prefix)
    _sync(device)
    _reset_peak(device)
    chunk = 16 if dry else 512
    scored_tokens = scored = 0
    started = time.perf_counter()
    passes = 1 if dry else 4
    for start in range(0, len(requests) * passes, chunk):  # passes over the same requests until `seconds`
        part = requests[start % len(requests) : start % len(requests) + chunk]
        engine.score(part, prefix)
        scored += len(part)
        scored_tokens += sum(len(prefix) + len(r.context) + sum(len(c) for c in r.choices) for r in part)
        if time.perf_counter() - started > seconds:
            break
    _sync(device)
    elapsed = time.perf_counter() - started
    return {
        "max_batch_tokens": engine.max_batch_tokens,
        "max_batch_size": engine.max_batch_size,
        "requests_scored": scored,
        "seconds": round(elapsed, 3),
        "scored_tokens": scored_tokens,
        "scored_tokens_per_s": round(scored_tokens / elapsed, 1),
        "requests_per_s": round(scored / elapsed, 1),
        "first_scores": [[round(s, 4) for s in row] for row in first[:4]],
        **_memory(device),
    }


# ---- bookkeeping ---------------------------------------------------------------------------------


def _pad_id(tokenizer: Any) -> int:
    """As the engine chooses it: the pad token, else the end token, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _memory(device: str) -> dict[str, Any]:
    if device != "cuda":
        return {"peak_gpu_mem_mib": None}
    return {
        "peak_gpu_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "peak_gpu_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1),
    }


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _error(error: BaseException) -> dict[str, Any]:
    return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:]}


def environment(device: str) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "device": device,
    }
    for package in ("transformers", "peft", "bitsandbytes", "pydantic", "accelerate", "tokenizers", "safetensors"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    info["sdpa_backends"] = {
        name: getattr(torch.backends.cuda, f"{name}_sdp_enabled")()
        for name in ("cudnn", "flash", "mem_efficient", "math")
        if hasattr(torch.backends.cuda, f"{name}_sdp_enabled")
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_total_mib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**20)
    return info


def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    return ROOT / "benchmarks" / "results" / "gpu_check.json"


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(staging, path)


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"gpu_check on {result['environment'].get('gpu', result['environment']['device'])}"
        f" (torch {result['environment']['torch']}, transformers {result['environment']['transformers']})"
    ]
    for part, value in result["parts"].items():
        if "error" in value:
            lines.append(f"  {part}: ERROR {value['error']}")
            continue
        for name, run in value.get("runs", {}).items():
            if "error" in run:
                lines.append(f"  {part}/{name}: ERROR {run['error']}")
            elif "useful_tokens_per_s" in run:
                lines.append(
                    f"  {part}/{name}: {run['useful_tokens_per_s']} useful tok/s, {run['steps']} steps, "
                    f"loss {run['first_loss']} -> {run['final_loss']}, peak {run['peak_gpu_mem_mib']} MiB"
                    f"  [{run['code_path'][:40]}]"
                )
            else:
                lines.append(
                    f"  {part}/{name}: {run['scored_tokens_per_s']} scored tok/s, "
                    f"{run['requests_per_s']} req/s, peak {run['peak_gpu_mem_mib']} MiB"
                )
        loop = value.get("full_loop")
        if loop:
            lines.append(
                f"  {part}/full_loop: "
                + (
                    f"ERROR {loop['error']}"
                    if "error" in loop
                    else f"{loop['steps']} steps in {loop['seconds']} s, loss {loop['first_loss']} -> "
                    f"{loop['final_loss']}, val {loop['validation_losses']}, peak {loop['peak_gpu_mem_mib']} MiB"
                )
            )
    lines.append(f"  total {result.get('total_seconds')} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default $OUT/gpu_check.json, else benchmarks/results/gpu_check.json)",
    )
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="config.json + tokenizer files")
    parser.add_argument("--parts", default="lora,qlora,eval")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per training configuration")
    parser.add_argument("--rows", type=int, default=6000, help="synthetic training rows")
    parser.add_argument("--train-configs", default="loop_defaults,gpu_sized")
    parser.add_argument("--eval-dtypes", default="bfloat16,float32")
    parser.add_argument("--no-full-loop", action="store_true", help="skip the run of tuning.loop.train itself")
    parser.add_argument("--no-cudnn-sdp", action="store_true", help="turn off the cuDNN attention backend of SDPA")
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, 2 steps of everything")
    args = parser.parse_args()

    dry = args.dry_run
    device = "cuda" if torch.cuda.is_available() and not dry else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)  # a wiring check; leave the machine's cores to others
    if args.no_cudnn_sdp:
        torch.backends.cuda.enable_cudnn_sdp(False)
    out_path = args.out or default_out()
    begun = time.perf_counter()
    result: dict[str, Any] = {
        "script": "benchmarks/gpu_check.py",
        "dry_run": dry,
        "environment": environment(device),
        "parts": {},
    }
    checkpoint = lambda: write_json(out_path, {**result, "total_seconds": round(time.perf_counter() - begun, 1)})  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        folder, model_info = prepare_model_folder(args.assets, work, device, tiny=dry)
        result["model"] = model_info
        tokenizer = load_tokenizer(folder)
        from transformers import AutoConfig

        vocab = AutoConfig.from_pretrained(str(folder)).vocab_size
        labels = label_tokens(tokenizer)
        ctx = {
            "device": device,
            "dry": dry,
            "folder": folder,
            "tokenizer": tokenizer,
            "vocab": vocab,
            "labels": labels,
            "prefix": shared_prefix(tokenizer),
            "pad_id": _pad_id(tokenizer),
            "rows": training_rows(64 if dry else args.rows, vocab, labels, seed=0),
            "seconds": 1.0 if dry else args.seconds,
            "checkpoint": checkpoint,
            "train_configs": args.train_configs.split(","),
            "eval_dtypes": args.eval_dtypes.split(","),
            "full_loop": not args.no_full_loop,
        }
        result["data"] = {
            "prefix_tokens": len(ctx["prefix"]),
            "train_rows": len(ctx["rows"]),
            "row_tokens_mean": round(sum(len(r.tokens) for r in ctx["rows"]) / len(ctx["rows"]), 1),
            "labels": len(labels),
        }
    except Exception as error:
        result["parts"]["setup"] = _error(error)
        checkpoint()
        print(summary(result))
        sys.exit(1)
    parts = {"lora": part_lora, "qlora": part_qlora, "eval": part_eval}
    for name in [p.strip() for p in args.parts.split(",") if p.strip()]:
        started = time.perf_counter()
        try:
            result["parts"][name] = parts[name](ctx)
        except Exception as error:
            result["parts"][name] = _error(error)
        result["parts"][name]["part_seconds"] = round(time.perf_counter() - started, 1)
        _free(device)
        checkpoint()
        print(f"[{name}] done in {result['parts'][name]['part_seconds']} s", flush=True)
    result["total_seconds"] = round(time.perf_counter() - begun, 1)
    write_json(out_path, result)
    shutil.rmtree(work, ignore_errors=True)
    print(summary(result))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
