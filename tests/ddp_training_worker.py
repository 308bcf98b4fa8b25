"""Training under a launch, for the data-parallel tests: [torchrun ...] tests/ddp_training_worker.py MODEL CKPT OUT.

Run alone it is one process; under `torchrun --nproc_per_node 2` each rank trains its share of every
batch. Every rank writes its pid to CKPT/../pid-<rank> (so a test can kill one), and rank 0 writes the
trained weights to OUT.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def main(model_dir: str, checkpoint_dir: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.distributed import current_ranks, join_process_group
    from tuning.loop import LoopSettings, TrainRow, Validation, train
    from tuning.methods import trainable_model
    from tuning.options import LoraOptions

    ranks = join_process_group("cpu")
    Path(checkpoint_dir).parent.joinpath(f"pid-{ranks.rank}").write_text(str(os.getpid()), encoding="utf-8")
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    torch.manual_seed(0)
    model = trainable_model("lora", base, LoraOptions(r=4, alpha=8, dropout=0.0))
    texts = [f"ticket number {i} says the app {'crashes' * (i % 3 + 1)} on upload" for i in range(40)]
    rows = [TrainRow((*tuple(tokenizer(t)["input_ids"]), 5, 9, 2), 3) for t in texts]
    settings = LoopSettings(
        epochs=3, learning_rate=1e-3, batch_tokens=96, max_batch_size=5, checkpoint_every=1, patience=5
    )
    report = train(model, rows, Validation(rows[:8]), settings, Path(checkpoint_dir), pad_id=2)
    if current_ranks().is_main:
        weights = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(weights, out, metadata={"steps": str(report.steps), "resumed_from": str(report.resumed_from_step)})


if __name__ == "__main__":
    main(*sys.argv[1:4])
