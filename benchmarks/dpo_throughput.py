"""DPO throughput: the dpo rung's preference loop against trl's DPOTrainer, same model, adapter, pairs and steps.

Target (from the issue): since the rung uses our own loop, ours trains >= 1.5x trl's pairs/s at an
equal final loss (within +-5 %).

Both train the embedded model (smollm2-135m-instruct, float32, CPU, 2 threads) through the same fresh
LoRA adapter (r 16, alpha 32, dropout 0, all-linear: `tuning.methods.lora_config`, seeded with 0
just before wrapping; `adapter_init_checksum` in the JSON shows both start from the same weights)
on the first `--pairs` pairs of examples/preferences_and_distill/preferences.jsonl, `--batch` pairs
a step for `--steps` steps (whole epochs), learning rate 5e-5 with a linear schedule and 10 %
warm-up, beta 0.1, the sigmoid (DPO) loss, gradient norm clipped to 1, no dropout, seed 0.
Each runs in its own process, so peak RSS is its own:

- ours: `tuning.preference_loop.train_preferences` on the pairs as `DpoPredictor.rows` builds them
  (the rung's prompt: the task's instruction as system turn, without the label list, as every tuned
  rung; "Ticket: {input}" as user turn; the answer's tokens up to and including `<|im_end|>`), the
  shared system turn run once per batch. The
  adapter is wrapped in place (`tuning.methods.wrap_lora`; `trainable_model` would first copy the base,
  because the rung keeps the engine's model for answering: left out so peak RSS compares the loops).
  No validation pairs and no task metric, so the epoch's judgement is the train pairs' rewards.
- trl: `DPOTrainer` (trl 1.16) with `peft_config` = the same LoRA config and the conversational format
  (prompt = the same system and user messages the rung's PromptBuilder builds, chosen and rejected =
  one assistant message each), so trl renders them with the same chat template. `DPOConfig` with
  bf16/fp16 and gradient checkpointing off (its defaults, both far slower on this CPU; the latter as
  `activation_checkpointing=False`, transformers 5's name), `use_cpu`, no saving or reporting, a log
  every step, its default `precompute_ref_log_probs=False` and optimizer (fused torch AdamW).

The reference is the same model for both: ours takes the starting model (here a fresh LoRA, B = 0,
i.e. the base; in the rung, its SFT adapter) and computes its log-probs of every pair once, before
the first step; trl, given a `peft_config` and no `ref_model`, runs the adapter-disabled base (the
same function) in a no-grad forward pass at every step.

Timed: training only (model loading and tokenising excluded), for ours the one-off reference pass
and the end-of-epoch judgement included, as they are part of the loop. pairs/s = pairs trained /
those seconds. The final loss is the mean of the last 4 steps' losses.

Differences the run reports or that are known (besides the implementations themselves):
- tokens: the prompts are the same tokens (checked per pair, `token_check` in the JSON); trl's
  answers carry one token more, the "\\n" that the chat template writes after `<|im_end|>`, which
  trl trains on as part of the completion and ours does not;
- schedule: transformers 5 has no `warmup_ratio`, and its fractional `warmup_steps` rounds up where
  ours rounds down (2.4 -> 3 vs 2 at 24 steps), so trl gets ours (`max(1, int(0.1 * steps))`) as an
  integer; its linear warm-up starts at 0 (the first step has learning rate 0), ours at 1 / warm-up;
- order: both shuffle the pairs with seed 0, but not into the same permutation.

    python benchmarks/dpo_throughput.py [--pairs 96] [--batch 4] [--steps 24]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, write_result

IMPLEMENTATIONS = ["ours", "trl"]
TASK = ROOT / "examples" / "preferences_and_distill" / "task.yaml"
LORA: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}
LEARNING_RATE = 5e-5  # the dpo rung's default dpo_learning_rate
BETA = 0.1
WARMUP_RATIO = 0.1
MAX_LENGTH = 512  # the rung's default max_length
SEED = 0
LAST = 4  # the final loss is the mean of the last LAST steps


@dataclass
class PreferenceData:
    """The pairs both ways: our rows (shared prefix + PairRows) and trl's conversational records."""

    source: Any
    tokenizer: Any
    pad_id: int
    prefix: tuple[int, ...]
    rows: list[Any]
    conversations: list[dict[str, Any]]


def preference_data(count: int) -> PreferenceData:
    """The first `count` pairs of the example's preference file, with the dpo rung's prompt."""
    from advisor.measure.model_context import prompt_format
    from advisor.task.data import load_task_data
    from advisor.task.spec import load_task
    from harness.data.preferences import load_preferences
    from harness.inference.models import load_tokenizer, resolve_model
    from harness.inference.prompts import PromptBuilder
    from harness.types import Example
    from tuning.preference_loop import PairRows
    from tuning.rows import shared_prefix, training_rows, tuned_prompts

    task = load_task(TASK)
    _, labels = load_task_data(task)
    source = resolve_model(task.model_name())
    tokenizer = load_tokenizer(source)
    fmt = prompt_format(task, labels, bool(tokenizer.chat_template), task.spec.model)
    prompts = tuned_prompts(PromptBuilder(tokenizer, fmt))
    pairs = load_preferences(task.data_files()["preferences"])[:count]
    if len(pairs) < count:
        raise SystemExit(f"only {len(pairs)} pairs in the preference file; asked for {count}")
    chosen = [Example(p.id, p.prompt, p.chosen) for p in pairs]
    rejected = [Example(p.id, p.prompt, p.rejected) for p in pairs]
    prefix = shared_prefix(prompts, chosen)
    rows = []
    for good, bad in zip(chosen, rejected, strict=True):  # as DpoPredictor.rows
        a, b = training_rows(prompts, [good], MAX_LENGTH, prefix), training_rows(prompts, [bad], MAX_LENGTH, prefix)
        if not (a and b):
            raise SystemExit(f"pair {good.id} does not fit max_length {MAX_LENGTH}")
        rows.append(PairRows(a[0], b[0]))
    conversations = [
        {
            "prompt": prompts.messages(good),
            "chosen": [{"role": "assistant", "content": good.target}],
            "rejected": [{"role": "assistant", "content": bad.target}],
        }
        for good, bad in zip(chosen, rejected, strict=True)
    ]
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)  # as the engine
    return PreferenceData(source, tokenizer, int(pad), prefix, rows, conversations)


def run_implementation(name: str, count: int, batch: int, steps: int) -> dict[str, Any]:
    import torch
    from transformers.utils import logging as transformers_logging

    from harness.inference.models import load_model
    from harness.library_warnings import silence_unfixable_warnings

    silence_unfixable_warnings()  # peft's (and trl's) reads of is_gradient_checkpointing, as advisor's CLI does
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(2)
    data = preference_data(count)
    model = load_model(data.source, "cpu", torch.float32)
    rss_loaded_mb = _current_rss_mb()
    if name == "ours":
        seconds, losses, checksum, extra = _ours(model, data, count, batch, steps)
    else:
        seconds, losses, checksum, extra = _trl(model, data, batch, steps)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pairs_trained = steps * batch
    return {
        "implementation": name,
        "pairs": count,
        "batch": batch,
        "steps": steps,
        "pairs_trained": pairs_trained,
        "seconds": seconds,
        "pairs_per_s": pairs_trained / seconds,
        "step_losses": losses,
        "final_loss": sum(losses[-LAST:]) / len(losses[-LAST:]),
        "peak_rss_mb": peak_rss_mb,
        "rss_after_load_mb": rss_loaded_mb,
        "adapter_init_checksum": checksum,  # the sum of the fresh lora_A weights: the same adapter on both sides
        **extra,
    }


def _ours(
    model: Any, data: PreferenceData, count: int, batch: int, steps: int
) -> tuple[float, list[float], float, dict]:
    import torch

    from tuning.methods import wrap_lora
    from tuning.options import LoraOptions
    from tuning.preference_loop import PreferenceSettings, train_preferences

    torch.manual_seed(SEED)
    # what trainable_model("lora", ...) does, without copying the base first
    adapter = wrap_lora(model, LoraOptions(**LORA), ())
    checksum = _adapter_checksum(adapter)
    settings = PreferenceSettings(
        epochs=steps // (count // batch),
        learning_rate=LEARNING_RATE,
        beta=BETA,
        loss_type="sigmoid",
        pairs_per_batch=batch,
        warmup_ratio=WARMUP_RATIO,
        max_grad_norm=1.0,
        seed=SEED,
    )
    started = time.perf_counter()
    report = train_preferences(adapter, data.rows, [], settings, data.pad_id, prefix=data.prefix)
    seconds = time.perf_counter() - started
    extra = {
        "tokens_trained": report.tokens,
        "train_reward_accuracy": report.train_reward_accuracy,
        "train_reward_margin": report.train_reward_margin,
    }
    return seconds, report.step_losses, checksum, extra


def _trl(model: Any, data: PreferenceData, batch: int, steps: int) -> tuple[float, list[float], float, dict]:
    import datasets
    from trl import DPOConfig, DPOTrainer

    from tuning.methods import lora_config

    datasets.disable_progress_bars()
    records = datasets.Dataset.from_list(data.conversations)
    with tempfile.TemporaryDirectory() as output:
        args = DPOConfig(
            output_dir=output,
            per_device_train_batch_size=batch,
            max_steps=steps,
            learning_rate=LEARNING_RATE,
            lr_scheduler_type="linear",
            warmup_steps=max(1, int(steps * WARMUP_RATIO)),  # ours, as an integer (see the module's docstring)
            weight_decay=0.0,
            max_grad_norm=1.0,
            beta=BETA,
            loss_type=["sigmoid"],
            disable_dropout=True,
            seed=SEED,
            bf16=False,
            fp16=False,
            activation_checkpointing=False,  # transformers 5's name for gradient_checkpointing (trl's default: on)
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=records,
            processing_class=data.tokenizer,
            peft_config=lora_config(**LORA),  # trl seeds with args.seed, then wraps
        )
        checksum = _adapter_checksum(trainer.model)
        token_check = _token_check(data, trainer.train_dataset)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    history = trainer.state.log_history
    losses = [float(entry["loss"]) for entry in history if "loss" in entry]
    accuracy = [float(entry["rewards/accuracies"]) for entry in history if "rewards/accuracies" in entry]
    return seconds, losses, checksum, {"token_check": token_check, "step_reward_accuracy": accuracy}


def _adapter_checksum(model: Any) -> float:
    return float(sum(p.detach().double().sum() for n, p in model.named_parameters() if "lora_A" in n))


def _token_check(data: PreferenceData, prepared: Any) -> dict[str, Any]:
    """How trl's tokens (prompt_ids, chosen_ids, rejected_ids) differ from the rows ours trains on."""
    same_prompt = 0
    tails: dict[str, int] = {}  # what trl's answer adds after ours (or "other" when ours is not its start)
    for rows, record in zip(data.rows, prepared, strict=True):
        ours_prompt = [*data.prefix, *rows.chosen.tokens[: -rows.chosen.completion]]
        same_prompt += list(record["prompt_ids"]) == ours_prompt
        for row, theirs in ((rows.chosen, record["chosen_ids"]), (rows.rejected, record["rejected_ids"])):
            ours = list(row.tokens[-row.completion :])
            theirs = list(theirs)
            key = repr(data.tokenizer.decode(theirs[len(ours) :])) if theirs[: len(ours)] == ours else "other"
            tails[key] = tails.get(key, 0) + 1
    return {"pairs": len(data.rows), "same_prompt_tokens": same_prompt, "trl_answer_adds": tails}


def _current_rss_mb() -> float:
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--implementation", choices=IMPLEMENTATIONS, help="run one in this process (used internally)")
    args = parser.parse_args()
    if args.pairs % args.batch or args.steps % (args.pairs // args.batch):
        parser.error("--pairs must be a multiple of --batch, and --steps a whole number of epochs (pairs / batch)")
    if args.implementation:
        print(json.dumps(run_implementation(args.implementation, args.pairs, args.batch, args.steps)))
        return
    runs = {}
    for name in IMPLEMENTATIONS:  # one process each: peak RSS is per implementation, and no two run at once
        command = [sys.executable, __file__, "--implementation", name]
        command += ["--pairs", str(args.pairs), "--batch", str(args.batch), "--steps", str(args.steps)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)  # stderr (warnings) shows
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        run = runs[name]
        print(
            f"  {name:5} {run['pairs_per_s']:6.2f} pairs/s  {run['seconds']:6.1f} s  "
            f"peak RSS {run['peak_rss_mb']:6.0f} MB  final loss {run['final_loss']:.4f}  "
            f"losses {' '.join(f'{loss:.4f}' for loss in run['step_losses'])}",
            flush=True,
        )
    speedup = runs["ours"]["pairs_per_s"] / runs["trl"]["pairs_per_s"]
    loss_difference = 100 * (runs["ours"]["final_loss"] - runs["trl"]["final_loss"]) / runs["trl"]["final_loss"]
    result = {
        "benchmark": "dpo_throughput",
        "pairs": args.pairs,
        "batch": args.batch,
        "steps": args.steps,
        "runs": runs,
        "ours_vs_trl_pairs_per_s": speedup,
        "final_loss_difference_percent": loss_difference,
        "target": "ours >= 1.5x trl's pairs/s at equal final loss (within 5 %)",
        "meets_target": speedup >= 1.5 and abs(loss_difference) <= 5.0,
    }
    path = write_result("dpo_throughput", result)
    check = runs["trl"]["token_check"]
    print(
        f"ours vs trl DPOTrainer: {speedup:.2f}x pairs/s (target >= 1.5x); final loss {loss_difference:+.1f} % "
        f"(target within 5 %); trl's prompts = ours in {check['same_prompt_tokens']}/{check['pairs']} pairs, "
        f"its answers add {check['trl_answer_adds']}"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
