"""benchmarks/scale.py's FSDP rows: what each of 2 gloo ranks holds while training, FSDP against DDP.

A random llama (8 layers, hidden 512, 29M parameters: big enough that weights outweigh the runtime)
is trained for one short epoch by Ladder's loop under `torchrun --nproc_per_node 2`, replicated
(DDP) and sharded (FSDP, the settings of examples/accelerate/fsdp.yaml), for full fine-tuning and LoRA.
Each rank reports the bytes of the weights and AdamW state it holds (its shard, or the whole) and its
peak resident memory (which also counts Python, torch, the data and the base as loaded).

    python benchmarks/scale_sharding.py     (alone; or python benchmarks/scale.py --part sharding)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, write_result

WORKER = ROOT / "benchmarks" / "sharding_memory_worker.py"
FSDP = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"}
MIB = 2**20


def _model(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=8192,
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=2,
        pad_token_id=2,
        bos_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def _launch(model: Path, method: str, sharded: bool, out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(FSDP if sharded else {})}
    done = subprocess.run(
        [*command, str(WORKER), str(model), method, str(out)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{method} {'FSDP' if sharded else 'DDP'} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def sharding_rows() -> list[dict[str, Any]]:
    """One row per (method, DDP or FSDP): the largest of the two ranks' holdings, in MiB."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        model = _model(Path(scratch) / "model")
        for method in ("full", "lora"):
            for sharded in (False, True):
                result = _launch(model, method, sharded, Path(scratch) / "memory.json")
                ranks = result["per_rank"]

                def most(key: str, ranks: list[dict[str, Any]] = ranks) -> float:
                    return round(max(rank[key] for rank in ranks) / MIB, 1)

                rows.append(
                    {
                        "method": method,
                        "launch": "FSDP" if sharded else "DDP",
                        "ranks": result["ranks"],
                        "steps": ranks[0]["steps"],
                        "trainable_weights_mib": most("trainable_weight_bytes"),
                        "frozen_weights_mib": most("frozen_weight_bytes"),
                        "gradients_mib": most("gradient_bytes"),
                        "adamw_state_mib": most("adamw_state_bytes"),
                        "peak_rss_mib": most("peak_rss_bytes"),
                    }
                )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print("per rank of 2 (MiB)  trainable  frozen  grads  AdamW  peak RSS")
    for row in rows:
        print(
            f"{row['method']:>5} {row['launch']:<5}        {row['trainable_weights_mib']:>9.1f} "
            f"{row['frozen_weights_mib']:>7.1f} {row['gradients_mib']:>6.1f} {row['adamw_state_mib']:>6.1f} "
            f"{row['peak_rss_mib']:>9.1f}"
        )


def main() -> None:
    rows = sharding_rows()
    path = write_result("scale_sharding", {"rows": rows})
    print_rows(rows)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
