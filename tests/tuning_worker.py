"""A training run in its own process, for the kill-and-resume test: python tests/tuning_worker.py MODEL CKPT OUT."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def main(model_dir: str, checkpoint_dir: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuning.loop import LoopSettings, TrainRow, Validation, train
    from tuning.methods import trainable_model
    from tuning.options import LoraOptions

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    torch.manual_seed(0)
    model = trainable_model("lora", base, LoraOptions(r=4, alpha=8, dropout=0.1))
    texts = [f"ticket number {i} says the app crashes on upload" for i in range(48)]
    rows = [TrainRow((*tuple(tokenizer(t)["input_ids"]), 5, 9, 2), 3) for t in texts]
    settings = LoopSettings(
        epochs=3, learning_rate=1e-3, batch_tokens=64, max_batch_size=4, checkpoint_every=1, patience=5
    )
    train(model, rows, Validation(rows[:8]), settings, Path(checkpoint_dir), pad_id=2)
    save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}, out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
