"""GPU acceptance peers: transformers Trainer + peft and trl's SFTTrainer (optionally with Liger) on our rows."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from benchmarks.gpu_ours import Context, free, memory, sync
from benchmarks.gpu_shapes import LORA


def local_tokenizer(vocab: int) -> Any:
    """A word-level tokenizer over the shape's vocabulary (trl wants a processing class; nothing is tokenized)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t2"))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="t0", eos_token="t1", unk_token="t2")


def count_tokens(model: Any) -> list[int]:
    """A running count of real (attention-mask) tokens the model's training forwards see."""
    counter = [0]

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if module.training:
            mask = kwargs.get("attention_mask")
            ids = kwargs.get("input_ids")
            counter[0] += int(mask.sum()) if mask is not None else int(ids.numel()) if ids is not None else 0

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return counter


def peer(ctx: Context, method: str) -> dict[str, Any]:
    """HF Trainer + peft, or trl's SFTTrainer (optionally with Liger), on the same rows, LoRA and batch size."""
    import datasets
    import torch
    from peft import get_peft_model
    from transformers import TrainerCallback, TrainingArguments

    from tuning.methods import lora_config, sharing_weights

    if method == "sft-trainer-liger":
        import liger_kernel  # noqa: F401  (a row only when it imports)
    torch.manual_seed(0)
    model = get_peft_model(sharing_weights(ctx.base()), lora_config(**LORA))
    counter = count_tokens(model)
    seconds = min(ctx.seconds, max(1.0, ctx.left() - 5))
    marks: dict[str, float] = {}
    limit = ctx.step_limit()

    class Timer(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            sync(ctx.device)
            now = time.perf_counter()
            if state.global_step == ctx.warm:
                marks.update(t0=now, u0=counter[0], s0=state.global_step)
            marks.update(t=now, u=counter[0], s=state.global_step)
            if "t0" in marks and (now - marks["t0"] > seconds or state.global_step >= limit):
                control.should_training_stop = True
            return control

    rows = ctx.rows
    common: dict[str, Any] = {
        "per_device_train_batch_size": 8,  # LoopSettings.max_batch_size
        "learning_rate": 2e-4,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "num_train_epochs": 1,
        "report_to": "none",
        "save_strategy": "no",
        "logging_strategy": "no",
        "dataloader_num_workers": 0,
        "bf16": ctx.device == "cuda",
        "use_cpu": ctx.device != "cuda",
    }
    free(ctx.device)
    with tempfile.TemporaryDirectory() as output:
        trainer: Any
        if method == "hf-trainer-lora":
            from transformers import Trainer

            data = datasets.Dataset.from_dict(
                {
                    "input_ids": [list(r.tokens) for r in rows],
                    "labels": [[-100] * (len(r.tokens) - r.completion) + list(r.tokens[-r.completion :]) for r in rows],
                }
            )

            def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
                width = max(len(b["input_ids"]) for b in batch)
                pad = [width - len(b["input_ids"]) for b in batch]
                return {
                    "input_ids": torch.tensor([b["input_ids"] + [0] * p for b, p in zip(batch, pad, strict=True)]),
                    "attention_mask": torch.tensor(
                        [[1] * len(b["input_ids"]) + [0] * p for b, p in zip(batch, pad, strict=True)]
                    ),
                    "labels": torch.tensor([b["labels"] + [-100] * p for b, p in zip(batch, pad, strict=True)]),
                }

            args = TrainingArguments(output_dir=output, remove_unused_columns=False, **common)
            trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[Timer()])
            code_path = "transformers.Trainer + peft.get_peft_model, padded to the batch's longest, completion labels"
        else:
            from trl import SFTConfig, SFTTrainer

            data = datasets.Dataset.from_dict(
                {
                    "input_ids": [list(r.tokens) for r in rows],
                    "completion_mask": [[0] * (len(r.tokens) - r.completion) + [1] * r.completion for r in rows],
                }
            )
            args = SFTConfig(
                output_dir=output,
                max_length=None,
                packing=False,
                completion_only_loss=True,
                use_liger_kernel=method == "sft-trainer-liger",
                **common,
            )
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=data,
                processing_class=local_tokenizer(ctx.vocab),
                callbacks=[Timer()],
            )
            code_path = "trl.SFTTrainer + peft, pre-tokenized rows, completion_only_loss, no packing" + (
                ", use_liger_kernel" if method == "sft-trainer-liger" else ""
            )
        trainer.train()
    if "t0" not in marks or marks["t"] <= marks["t0"]:
        raise RuntimeError(f"fewer than {ctx.warm + 1} steps ran")
    elapsed = marks["t"] - marks["t0"]
    out = {
        "code_path": code_path,
        "timed_steps": int(marks["s"] - marks["s0"]),
        "timed_seconds": round(elapsed, 3),
        "useful_tokens": int(marks["u"] - marks["u0"]),
        "tokens_per_s": round((marks["u"] - marks["u0"]) / elapsed, 1),
        **memory(ctx.device),
    }
    del trainer, model
    return out
