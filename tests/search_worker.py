"""A search in its own process, for the kill-and-resume test: python tests/search_worker.py MODEL FOLDER.

Writes FOLDER/result.json, a copy of the finished search's result.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch


def main(model_dir: str, folder: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.inference.engine import Engine
    from harness.inference.prompts import PromptBuilder, PromptFormat
    from harness.rungs import RungContext
    from harness.types import Example
    from tuning.spaces import Range, SearchOptions
    from tuning.tuned import LoraOptions, TunedPredictor

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    labels = ("access", "billing", "technical")
    texts = [f"ticket {i} says the app {'crashes' if i % 2 else 'bills'}" for i in range(40)]
    examples = [Example(f"t{i}", text, labels[i % 3]) for i, text in enumerate(texts)]
    context = RungContext(
        Engine(model, tokenizer),
        PromptBuilder(tokenizer, PromptFormat(instruction="Route the ticket.", labels=labels)),
        "classification",
        labels,
        tuple(examples[8:]),
        tuple(examples[:8]),
        "tiny",
        0,
        cache_dir=Path(folder),
        model_name="tiny",
    )
    search = SearchOptions(
        trials=3, space={"learning_rate": Range(low=1e-3, high=5e-2)}, pruner="none", relative_budget=10
    )
    config = LoraOptions(r=2, epochs=3, batch_tokens=64, max_batch_size=4, checkpoint_every=1, search=search)
    predictor = TunedPredictor("lora", config, context)
    predictor.prepare()
    shutil.copy2(predictor.artifacts.search_folder() / "result.json", Path(folder) / "result.json")


if __name__ == "__main__":
    main(*sys.argv[1:])
