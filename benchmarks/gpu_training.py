"""GPU check: LoRA and QLoRA training throughput through the project's own step (see gpu_check.py)."""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu_setup import EPOCHS, LORA_OPTIONS, _error, _free, _memory, _reset_peak, _sync, load_base, lora_model

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


def timed_runs(model: Any, ctx: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Each chosen training configuration timed on `model` for about `seconds` (an error is its result)."""
    device, dry = ctx["device"], ctx["dry"]
    runs: dict[str, Any] = {}
    for name, overrides in training_configs(dry):
        if name not in ctx["train_configs"]:
            continue
        try:
            runs[name] = timed_training(
                model,
                ctx["rows"],
                ctx["prefix"],
                ctx["pad_id"],
                loop_settings(**overrides),
                seconds,
                max_steps=2 if dry else 10**6,
                warmup_steps=0 if dry else 3,
                device=device,
            )
        except Exception as error:
            runs[name] = _error(error)
        ctx["checkpoint"]()
    return runs


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
    }
    out["runs"] = timed_runs(model, ctx, ctx["seconds"])
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
    device = ctx["device"]
    import bitsandbytes

    from tuning.methods import quantized_base, wrap_lora
    from tuning.options import LoraOptions

    _reset_peak(device)
    base = quantized_base(str(ctx["folder"]), device)
    load_memory = _memory(device)
    torch.manual_seed(0)
    # a quantized base is wrapped in place, as trainable_model does
    model = wrap_lora(base, LoraOptions(**LORA_OPTIONS), ())
    out: dict[str, Any] = {
        "bitsandbytes": bitsandbytes.__version__,
        "base_loader": "tuning.methods.quantized_base (nf4, double quant, bf16 compute on CUDA)",
        "wrapper": "tuning.methods.wrap_lora",
        "quantized_base_load_memory": load_memory,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    out["runs"] = timed_runs(model, ctx, ctx["seconds"] * 0.75)
    del model, base
    _free(device)
    return out
