"""Training throughput on the example task: our loop (lora, qlora, full) against the recipes users copy.

Every method trains on the same rows (the example's train tickets, with the zero_shot chat prompt
and the label as the answer) for the same number of steps of the same batch size, each in its own
process so that peak RSS is its own. Useful tokens are the non-padding tokens of those rows: the
same count for every method, so useful tokens/s compares the time each takes for the same work.

- (a) the tutorial recipe: transformers Trainer, rows padded to max_length=512, loss on every token,
  float32, over the same LoRA adapter;
- (b) trl's SFTTrainer with its defaults except precision (`bf16=False`: its CPU default, bf16, runs
  many times slower on this CPU), over the same LoRA adapter.

Afterwards each trained model answers the example's 124 test tickets through our engine with the
zero_shot prompt, so held-out accuracy is compared on equal terms (the peers' losses cover every
token, so their loss values are not comparable to ours).

    python benchmarks/train_throughput.py [--rows 160] [--batch 8]
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

METHODS = ["ours-lora", "ours-qlora", "ours-full", "trainer-max-length-lora", "sft-trainer-lora"]
LORA: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


@dataclass
class ExampleTask:
    """The example's model path, tokenizer, prompt builder, labels, train rows and test tickets."""

    model_path: str
    tokenizer: Any
    prompts: Any
    labels: tuple[str, ...]
    rows: list[tuple[int, ...]]
    answers: list[int]
    test: list[Any]


def example_task(count: int) -> ExampleTask:
    """The example's first `count` train rows (zero_shot prompt + answer tokens) and its test set."""
    from transformers import AutoTokenizer

    from advisor.measure.model_context import prompt_format
    from advisor.task.data import load_task_data
    from advisor.task.spec import load_task
    from harness.inference.models import resolve_model
    from harness.inference.prompts import PromptBuilder

    task = load_task(ROOT / "examples" / "support_tickets" / "task.yaml")
    splits, labels = load_task_data(task)
    source = resolve_model(task.model_name())
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    prompts = PromptBuilder(tokenizer, prompt_format(task, labels, bool(tokenizer.chat_template), task.spec.model))
    rows, answers = [], []
    for example in splits.train[:count]:
        answer = prompts.choice_tokens(example.target)
        rows.append((*prompts.encode(example), *answer))
        answers.append(len(answer))
    return ExampleTask(source.path, tokenizer, prompts, tuple(labels), rows, answers, list(splits.test))


def held_out_accuracy(model: Any, task: ExampleTask) -> float:
    """Accuracy on the example's test tickets, scored the same way for every method (our engine, zero_shot prompt)."""
    from harness.inference.answering import answer
    from harness.inference.engine import Engine

    model.eval()
    engine = Engine(model, task.tokenizer)
    encoded = [task.prompts.split(example) for example in task.test]
    outputs = answer(engine, task.prompts, encoded, task.labels, "score", 8)
    return sum(o.text == e.target for o, e in zip(outputs, task.test, strict=True)) / len(task.test)


def run_method(method: str, count: int, batch: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from tuning.methods import quantized_base

    torch.set_num_threads(2)
    task = example_task(count)
    model_path, tokenizer, rows, answers = task.model_path, task.tokenizer, task.rows, task.answers
    if method == "ours-qlora":
        model = quantized_base(model_path, "cpu")
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, use_safetensors=True)
    base_weights_mb = model.get_memory_footprint() / 2**20
    rss_loaded_mb = _current_rss_mb()
    steps = count // batch
    useful = sum(len(r) for r in rows[: steps * batch])
    started = time.perf_counter()
    if method.startswith("ours-"):
        from tuning.loop import LoopSettings, TrainRow, Validation, train
        from tuning.methods import trainable_model
        from tuning.options import LoraOptions

        kind = method.removeprefix("ours-")
        torch.manual_seed(0)
        trainable = trainable_model(kind, model, LoraOptions(**LORA))  # copies the base (the engine keeps the original)
        rss_wrapped_mb = _current_rss_mb()
        train_rows = [TrainRow(r, a) for r, a in zip(rows, answers, strict=True)][: steps * batch]
        settings = LoopSettings(
            epochs=1,
            learning_rate=2e-5 if kind == "full" else 2e-4,
            batch_tokens=10**6,
            max_batch_size=batch,
            checkpoint_every=10**6,
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            report = train(trainable, train_rows, Validation(), settings, Path(folder), tokenizer.pad_token_id)
        seconds = time.perf_counter() - started
        loss = report.train_losses[-1]
    else:
        seconds, loss, trainable = _peer(method, model, tokenizer, rows[: steps * batch], steps, batch)
        rss_wrapped_mb = float("nan")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # training's peak, before evaluation
    accuracy = held_out_accuracy(trainable, task)
    return {
        "method": method,
        "steps": steps,
        "batch": batch,
        "useful_tokens": useful,
        "seconds": seconds,
        "useful_tokens_per_s": useful / seconds,
        "final_loss": loss,
        "held_out_accuracy": accuracy,
        "test_examples": len(task.test),
        "peak_rss_mb": peak_rss_mb,
        "rss_after_load_mb": rss_loaded_mb,
        "rss_after_wrapping_mb": rss_wrapped_mb,
        "base_weights_mb": base_weights_mb,
    }


def _current_rss_mb() -> float:
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peer(
    method: str, model: Any, tokenizer: Any, rows: list[tuple[int, ...]], steps: int, batch: int
) -> tuple[float, float, Any]:
    import datasets
    import torch
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    from tuning.methods import lora_config

    torch.manual_seed(0)
    peft_model = get_peft_model(model, lora_config(**LORA))
    with tempfile.TemporaryDirectory() as output:
        if method == "trainer-max-length-lora":
            pad = tokenizer.pad_token_id
            ids = [list(r) + [pad] * (512 - len(r)) for r in rows]
            mask = [[1] * len(r) + [0] * (512 - len(r)) for r in rows]
            labels = [list(r) + [-100] * (512 - len(r)) for r in rows]  # loss on every (non-pad) token
            data = datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": mask, "labels": labels})
            args = TrainingArguments(
                output_dir=output,
                per_device_train_batch_size=batch,
                max_steps=steps,
                learning_rate=2e-4,
                report_to="none",
                save_strategy="no",
                use_cpu=True,
                bf16=False,
                logging_strategy="no",
                dataloader_num_workers=0,
            )
            trainer: Any = Trainer(model=peft_model, args=args, train_dataset=data)
        else:
            from trl import SFTConfig, SFTTrainer

            data = datasets.Dataset.from_dict({"input_ids": [list(r) for r in rows]})
            args = SFTConfig(
                output_dir=output,
                per_device_train_batch_size=batch,
                max_steps=steps,
                bf16=False,
                report_to="none",
                save_strategy="no",
                use_cpu=True,
                logging_strategy="no",
            )
            trainer = SFTTrainer(model=peft_model, args=args, train_dataset=data, processing_class=tokenizer)
        started = time.perf_counter()
        result = trainer.train()
        return time.perf_counter() - started, float(result.training_loss), peft_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--method", choices=METHODS, help="run one method in this process (used internally)")
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args.method, args.rows, args.batch)))
        return
    runs = {}
    for method in METHODS:  # one process each: peak RSS is per method, and no two run at once
        done = subprocess.run(
            [sys.executable, __file__, "--method", method, "--rows", str(args.rows), "--batch", str(args.batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs[method] = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  {method:24} {runs[method]['useful_tokens_per_s']:7.1f} useful tok/s  "
            f"{runs[method]['seconds']:6.1f} s  peak RSS {runs[method]['peak_rss_mb']:6.0f} MB  "
            f"loss {runs[method]['final_loss']:.3f}  held-out accuracy {runs[method]['held_out_accuracy']:.3f}",
            flush=True,
        )
    ours = runs["ours-lora"]["useful_tokens_per_s"]
    result = {
        "benchmark": "train_throughput",
        "rows": args.rows,
        "batch": args.batch,
        "runs": runs,
        "lora_vs_trainer_max_length": ours / runs["trainer-max-length-lora"]["useful_tokens_per_s"],
        "lora_vs_sft_trainer": ours / runs["sft-trainer-lora"]["useful_tokens_per_s"],
        "accuracy": {method: run["held_out_accuracy"] for method, run in runs.items()},
    }
    path = write_result("train_throughput", result)
    print(
        f"ours-lora vs (a) Trainer max_length=512: {result['lora_vs_trainer_max_length']:.2f}x; "
        f"vs (b) SFTTrainer bf16=False: {result['lora_vs_sft_trainer']:.2f}x"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
