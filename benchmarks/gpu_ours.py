"""GPU acceptance: Ladder's own loop (tuning.loop.train, and tuning.search.run_search over it) on synthetic rows.

Also what every measurement of a group shares: the Context (shape, device, rows, the random-weight base) and the
device bookkeeping (benchmarks.gpu_setup's sync, peak memory and free).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.gpu_setup import _free, _memory, _reset_peak, training_rows
from benchmarks.gpu_setup import _sync as sync
from benchmarks.gpu_shapes import LORA, SHAPES, llama_config

LABEL_COUNT = 8


class Budget(Exception):
    """Raised from a progress callback when a measurement's time is up."""


def synthetic_rows(count: int, vocab: int, seed: int) -> list[Any]:
    """Prompt bodies of 16-192 random tokens, then a 2-token answer that is a function of the first token."""
    labels: list[tuple[int, ...]] = [(10 + k, 1) for k in range(LABEL_COUNT)]
    return training_rows(count, vocab, labels, seed)


class Context:
    def __init__(self, shape: str, device: str, smoke: bool, seconds: float, warm: int, until: float) -> None:
        import torch

        self.shape, self.device, self.smoke, self.seconds, self.warm, self.until = (
            shape,
            device,
            smoke,
            seconds,
            warm,
            until,
        )
        self.dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.vocab = SHAPES[shape]["vocab_size"]
        self.rows = synthetic_rows(64 if smoke else 4096, self.vocab, seed=0)
        self.device_name = torch.cuda.get_device_name(0) if device == "cuda" else None
        self._base: Any = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def base(self) -> Any:
        """The random-weight bf16 base (built once per group, on the device)."""
        if self._base is None:
            import torch
            from transformers import AutoModelForCausalLM

            torch.manual_seed(0)
            with torch.device(self.device):
                self._base = AutoModelForCausalLM.from_config(llama_config(self.shape), dtype=self.dtype)
            self._base.eval()
        return self._base

    def saved_folder(self) -> str:
        """The base saved as safetensors (what quantized_base loads)."""
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR"))
            self.base().save_pretrained(self._folder.name, safe_serialization=True)
        return self._folder.name

    def step_limit(self) -> int:
        return self.warm + 3 if self.smoke else 10**6

    def left(self) -> float:
        return self.until - time.time()


def memory(device: str) -> dict[str, Any]:
    """Peak GPU memory since the last free(); nothing on the CPU."""
    return {key: value for key, value in _memory(device).items() if value is not None}


def free(device: str) -> None:
    _free(device)
    _reset_peak(device)


def ours(ctx: Context, kind: str, micro_batch_tokens: int | None) -> dict[str, Any]:
    """tuning.loop.train at LoopSettings() defaults (micro_batch_tokens overridden for the sweep), timed after warm-up.

    Useful tokens come from the loop's own count: the progress callback hears the cumulative useful tokens/s, which
    times the seconds since train() was called is the cumulative count (train() starts its clock a few ms later).
    """
    from tuning.loop import LoopSettings, Validation, train
    from tuning.methods import quantized_base, trainable_model
    from tuning.options import LoraOptions

    base = quantized_base(ctx.saved_folder(), ctx.device) if kind == "qlora" else ctx.base()
    import torch

    torch.manual_seed(0)
    model = trainable_model(kind, base, LoraOptions(**LORA))
    finding = time.perf_counter()
    tokens = micro_batch_tokens if micro_batch_tokens is not None else found_micro_batch(ctx, model, kind)
    finding = time.perf_counter() - finding
    settings = LoopSettings(micro_batch_tokens=tokens)
    marks: dict[str, float] = {}
    seconds = min(ctx.seconds, max(1.0, ctx.left() - 5))

    def progress(step: int, total: int, loss: float, tokens_per_s: float) -> None:
        sync(ctx.device)
        now = time.perf_counter()
        useful = tokens_per_s * (now - marks["called"])
        if step == ctx.warm:
            marks.update(t0=now, u0=useful, s0=step)
        marks.update(t=now, u=useful, s=step, loss=loss)
        if "t0" in marks and (now - marks["t0"] > seconds or step >= ctx.step_limit()):
            raise Budget

    free(ctx.device)
    with tempfile.TemporaryDirectory() as folder:
        marks["called"] = time.perf_counter()
        with contextlib.suppress(Budget):
            train(model, ctx.rows, Validation(), settings, Path(folder) / "ckpt", 0, progress=progress)
    if "t0" not in marks or marks["t"] <= marks["t0"]:
        raise RuntimeError(f"fewer than {ctx.warm + 1} steps ran (an epoch is too short for the warm-up)")
    elapsed = marks["t"] - marks["t0"]
    out = {
        "code_path": f"tuning.loop.train, tuning.methods.trainable_model({kind!r})"
        + (", quantized_base (nf4)" if kind == "qlora" else ""),
        "settings": {
            "batch_tokens": settings.batch_tokens,
            "max_batch_size": settings.max_batch_size,
            "micro_batch_tokens": settings.micro_batch_tokens,
        },
        "micro_batch_finder_seconds": round(finding, 3) if micro_batch_tokens is None else None,
        "timed_steps": int(marks["s"] - marks["s0"]),
        "timed_seconds": round(elapsed, 3),
        "useful_tokens": round(marks["u"] - marks["u0"]),
        "tokens_per_s": round((marks["u"] - marks["u0"]) / elapsed, 1),
        "last_loss": round(marks["loss"], 4),
        **memory(ctx.device),
    }
    del model
    return out


def found_micro_batch(ctx: Context, model: Any, kind: str) -> int:
    """The micro-batch the Trainer's "auto" uses: 512 off CUDA, measured on CUDA (tuning/micro_batch.py)."""
    from tuning.micro_batch import MicroBatchCache, micro_batch_tokens

    with tempfile.TemporaryDirectory() as folder:
        cache = MicroBatchCache(Path(folder) / "micro_batches.json")
        return micro_batch_tokens("auto", model, ctx.rows, 0, (), cache=cache, model_key=ctx.shape, method=kind)


def search(ctx: Context, trials: int, together: bool = False) -> dict[str, Any]:
    """tuning.search.run_search over the lora rung's default space, each trial tuning.loop.train at the Trainer's
    defaults; `together`: the trials asked at once and trained in one pass over the base (tuning/trial_batch.py)."""
    import torch

    from tuning.loop import EvaluationObserver, LoopSettings, Pruned, TrainingRun, Validation, train, train_runs
    from tuning.methods import add_lora, trainable_model
    from tuning.options import LoraOptions
    from tuning.search import SearchPlan, TrialOutcome, run_search
    from tuning.spaces import SearchOptions, default_space
    from tuning.trainer import trial_outcome
    from tuning.trial_batch import AdapterTeam, trial_adapters

    count = 16 if ctx.smoke else 1024
    train_rows, validation = ctx.rows[:count], Validation(ctx.rows[count : count + count // 8])
    defaults = LoopSettings()
    base = ctx.base()
    if not ctx.smoke:  # kernels and allocator warmed before either search is timed
        warm = trainable_model("lora", base, LoraOptions(**LORA))
        with tempfile.TemporaryDirectory() as warm_folder:
            train(warm, train_rows[:64], Validation(), LoopSettings(epochs=1), Path(warm_folder), 0)
        del warm
    free(ctx.device)
    tokens = found_micro_batch(ctx, trainable_model("lora", base, LoraOptions(**LORA)), "lora")

    def run_trial(number: int, params: dict[str, Any], observer: EvaluationObserver) -> TrialOutcome:
        torch.manual_seed(0)
        model = trainable_model("lora", base, LoraOptions(**LORA))
        settings = LoopSettings(learning_rate=params["learning_rate"], micro_batch_tokens=tokens)
        report = train(
            model, train_rows, validation, settings, trials_folder / f"trial-{number}", 0, on_evaluation=observer
        )
        return trial_outcome(report, "")

    def run_trials(asked: list[tuple[int, dict[str, Any], EvaluationObserver]]) -> list[TrialOutcome | Pruned]:
        torch.manual_seed(0)
        model = trainable_model("lora", base, LoraOptions(**LORA))
        names = trial_adapters(model, lambda team, name: add_lora(team, LoraOptions(**LORA), name), len(asked), 0)
        rates = [params["learning_rate"] for _, params, _ in asked]
        loops = [LoopSettings(learning_rate=rate, micro_batch_tokens=tokens) for rate in rates]
        team = AdapterTeam(model, names, 0, (), loops[0])
        runs = []
        for name, loop, (number, _, observer) in zip(names, loops, asked, strict=True):
            run = TrainingRun(team.trainable(name), loop, validation, trials_folder / f"trial-{number}", observer)
            team.join(run, name)
            runs.append(run)
        train_runs(model, runs, train_rows, 0, team.backward, focus=team.focus)
        team.close()
        return [run.pruned or trial_outcome(run.report, "") for run in runs]

    plan = SearchPlan(
        space=default_space("lora"),
        options=SearchOptions(trials=trials),
        metric="loss",
        max_epochs=defaults.epochs,
        evaluations_per_epoch=defaults.evaluations_per_epoch,
        seed=0,
        first={"learning_rate": defaults.learning_rate},
        at_once=trials if together else 1,
    )
    with tempfile.TemporaryDirectory() as name:
        trials_folder = Path(name)
        started = time.perf_counter()
        result = run_search(trials_folder / "search", plan, run_trial, run_trials if together else None)
        wall = time.perf_counter() - started
    return {
        "code_path": f"tuning.search.run_search(SearchOptions(trials={trials})), trials by "
        + ("tuning.loop.train_runs over one AdapterTeam (trials_at_once)" if together else "tuning.loop.train"),
        "micro_batch_tokens": tokens,
        "train_rows": len(train_rows),
        "validation_rows": len(validation.rows),
        "wall_seconds": round(wall, 3),
        "trials": [
            {
                "number": t.number,
                "state": t.state,
                "epochs_run": t.epochs_run,
                "seconds": round(t.seconds, 3),
                "params": t.params,
            }
            for t in result.trials
        ],
        **memory(ctx.device),
    }
