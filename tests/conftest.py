"""Shared fixtures: a tiny random llama with a tiny real tokenizer, built here with no download."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "The app crashes when I upload a file.",
    "I was charged twice this month.",
    "How do I reset my password?",
    "Please add a dark mode.",
    "Delete all my personal data.",
    "I want to cancel my subscription.",
    "billing technical issue account access feature request data privacy cancellation",
    "positive negative review sentiment great terrible movie film loved hated",
    "Ticket: Review: Sentiment: Answer with exactly one of:",
] * 4


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on a few sentences, with a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def build_tiny_llama(vocab_size: int, seed: int = 0) -> Any:
    """A 2-layer llama with random weights (grouped-query attention, tied embeddings)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=2,
        pad_token_id=2,
        bos_token_id=1,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer: Any) -> Any:
    """The tiny llama, sized to the tiny tokenizer."""
    return build_tiny_llama(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any, tiny_tokenizer: Any) -> Path:
    """The tiny model and tokenizer saved as a local model folder (safetensors)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_model.save_pretrained(folder, safe_serialization=True)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSON Lines."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


TICKETS = [
    ("I was charged twice for my plan", "billing"),
    ("Refund the extra charge please", "billing"),
    ("My invoice shows the wrong amount", "billing"),
    ("Why did my card get billed again", "billing"),
    ("The app crashes on upload", "technical"),
    ("Sync fails with error 500", "technical"),
    ("Pages load forever in Firefox", "technical"),
    ("The export button does nothing", "technical"),
    ("I cannot log in to my account", "access"),
    ("Password reset email never arrives", "access"),
    ("My account is locked after two tries", "access"),
    ("Two factor code is rejected", "access"),
]


def write_ticket_task(folder: Path, model_dir: Path) -> Path:
    """A small classification task on the model in `model_dir`: train and test files and task.yaml."""
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate(TICKETS)]
    write_jsonl(folder / "train.jsonl", rows[0::2])
    write_jsonl(folder / "test.jsonl", rows[1::2])
    (folder / "task.yaml").write_text(
        "name: tickets\n"
        f"model: {model_dir}\n"
        "instruction: Route the ticket.\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
        "rungs:\n  - zero_shot\n  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n"
        "evaluation: {latency_sample: 2, bootstrap_resamples: 200}\n",
        encoding="utf-8",
    )
    return folder / "task.yaml"


@pytest.fixture
def ticket_task(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A small classification task on the tiny model: train and test files and task.yaml."""
    return write_ticket_task(tmp_path, tiny_model_dir)


@dataclass(frozen=True)
class AssessedTickets:
    """The ticket task after one cold `advisor assess TASK --out run.json`: what it printed and wrote."""

    folder: Path  # task.yaml, its data, run.json (+ run.md, run.html) and .advisor/ (the store); never write here
    stdout: str
    stderr: str

    @property
    def task(self) -> Path:
        return self.folder / "task.yaml"

    def data(self) -> dict[str, Any]:
        """run.json, read afresh (a test may change its copy)."""
        return dict(json.loads((self.folder / "run.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def assessed_tickets(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> AssessedTickets:
    """The ticket task assessed once for the whole session (read only): the tests that need a finished cold
    run of it share this one instead of each assessing it again."""
    from click.testing import CliRunner

    from advisor.cli.main import main

    folder = tmp_path_factory.mktemp("assessed-tickets")
    task = write_ticket_task(folder, tiny_model_dir)
    result = CliRunner().invoke(main, ["assess", str(task), "--out", str(folder / "run.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return AssessedTickets(folder, result.stdout, result.stderr)


@pytest.fixture
def warm_ticket_task(tmp_path: Path, assessed_tickets: AssessedTickets) -> Path:
    """A copy of the assessed ticket task in tmp_path with its store: the same task, already assessed once."""
    shutil.copytree(assessed_tickets.folder, tmp_path, dirs_exist_ok=True)
    return tmp_path / "task.yaml"
