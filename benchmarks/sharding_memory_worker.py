"""One rank's training memory, for benchmarks/scale.py: [torchrun ...] sharding_memory_worker.py MODEL METHOD OUT.

Trains METHOD (lora or full) for one short epoch with Ladder's loop, sharded when the environment asks
for FSDP (else replicated, as DDP), then every rank reports what it holds: the bytes of its weights
(its shard, or the whole), of its AdamW state, and its peak resident memory. Rank 0 writes them to OUT.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

import torch


def _bytes(tensors: list[torch.Tensor]) -> int:
    from tuning.sharding import local_part

    return sum(local_part(t).numel() * t.element_size() for t in tensors)


def main(model_dir: str, method: str, out: str) -> None:
    from torch.distributed.fsdp import FSDPModule
    from transformers import AutoModelForCausalLM

    from harness.distributed import gather, join_process_group, weights_sharded
    from tuning.full import FullConfig
    from tuning.loop import LoopSettings, TrainRow, Validation, train
    from tuning.methods import trainable_model
    from tuning.options import LoraOptions
    from tuning.sharding import is_sharded, shard_for_training

    ranks = join_process_group("cpu")
    torch.set_num_threads(1)
    base = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    torch.manual_seed(0)
    options = LoraOptions(r=16, alpha=32, dropout=0.0) if method == "lora" else FullConfig()
    model = shard_for_training(trainable_model(method, base, options))
    del base  # the full method trains a copy; the lora method wraps the same modules
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    rows = [TrainRow(tuple(torch.randint(3, vocab, (48,), generator=generator).tolist()), 8) for _ in range(16)]
    settings = LoopSettings(epochs=1, learning_rate=1e-4, batch_tokens=192, max_batch_size=4, evaluations_per_epoch=1)
    with tempfile.TemporaryDirectory() as checkpoints:
        report = train(model, rows, Validation(rows[:2]), settings, Path(checkpoints), pad_id=2)
    if is_sharded(model):  # FSDP leaves the root unit gathered after a forward; between steps it is sharded
        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.reshard()
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    mine = {
        "trainable_weight_bytes": _bytes(trainable),
        "frozen_weight_bytes": _bytes(frozen),
        "gradient_bytes": _bytes(trainable),  # each step's gradients are the shape of the weights they train
        "adamw_state_bytes": 2 * _bytes(trainable),  # exp_avg and exp_avg_sq, each the shape of its weight
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "steps": report.steps,
    }
    every = gather(mine)
    if ranks.is_main:
        result = {"sharded": weights_sharded(), "ranks": ranks.world_size, "method": method, "per_rank": every}
        Path(out).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
