"""Scale-out tests: [torchrun ...] tests/ddp_training_worker.py MODEL CKPT OUT [METHOD].

Run alone it is one process; under `torchrun --nproc_per_node 2` each rank trains its share of every
batch, with the model sharded over the ranks when the environment asks for FSDP (as `accelerate launch
--config_file examples/accelerate/fsdp.yaml` does). METHOD is lora (the default) or full; one epoch of
16 steps. Every rank writes its pid to CKPT/../pid-<rank> (so a test can kill one), and rank 0 writes the
trained weights (gathered whole) to OUT, with the steps, the step it resumed from and the training losses
as metadata.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def main(model_dir: str, checkpoint_dir: str, out: str, method: str = "lora") -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.distributed import current_ranks, join_process_group
    from tuning.full import FullConfig
    from tuning.loop import LoopSettings, TrainRow, Validation, train
    from tuning.methods import trainable_model
    from tuning.options import LoraOptions
    from tuning.sharding import full_state_dict, is_sharded, shard_for_training

    ranks = join_process_group("cpu")
    Path(checkpoint_dir).parent.joinpath(f"pid-{ranks.rank}").write_text(str(os.getpid()), encoding="utf-8")
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    torch.manual_seed(0)
    options = LoraOptions(r=4, alpha=8, dropout=0.0) if method == "lora" else FullConfig()
    model = shard_for_training(trainable_model(method, base, options))
    texts = [f"ticket number {i} says the app {'crashes' * (i % 3 + 1)} on upload" for i in range(40)]
    rows = [TrainRow((*tuple(tokenizer(t)["input_ids"]), 5, 9, 2), 3) for t in texts]
    settings = LoopSettings(
        epochs=1, learning_rate=1e-3, batch_tokens=96, max_batch_size=5, checkpoint_every=1, patience=5
    )
    report = train(model, rows, Validation(rows[:8]), settings, Path(checkpoint_dir), pad_id=2)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    whole = full_state_dict(model) if is_sharded(model) else dict(model.state_dict())
    if current_ranks().is_main:
        weights = {n: whole[n].detach().contiguous() for n in trained}
        metadata = {
            "steps": str(report.steps),
            "resumed_from": str(report.resumed_from_step),
            "losses": json.dumps(report.train_losses),
        }
        save_file(weights, out, metadata=metadata)


if __name__ == "__main__":
    main(*sys.argv[1:5])
