"""Tuned rungs on the tiny llama: training works, artifacts round-trip, caches hit, kills resume."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from harness.inference.engine import Engine
from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.rungs import RungContext
from harness.types import Example
from tests.conftest import TICKETS
from tests.pausing import kill_at, running_beside
from tuning.artifacts import read_card
from tuning.batch_loss import batch_loss
from tuning.judging import evaluate_loss
from tuning.loop import LoopSettings, TrainRow, Validation, train
from tuning.methods import trainable_model
from tuning.tuned import LoraOptions, TuneConfig, TunedPredictor

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("access", "billing", "technical")
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}


def context(model: Any, tokenizer: Any, cache: Path, model_dir: Path | None = None) -> RungContext:
    train_set = tuple(Example(f"t{i}", text, label) for i, (text, label) in enumerate(TICKETS * 2))
    fmt = PromptFormat(instruction="Route the ticket.", labels=LABELS)
    return RungContext(
        Engine(model, tokenizer),
        PromptBuilder(tokenizer, fmt),
        "classification",
        LABELS,
        train_set,
        (),
        "tiny",
        0,
        cache_dir=cache,
        model_path=str(model_dir or ""),
        model_name="tiny",
    )


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # bf16 on a GPU; never needed


@pytest.mark.parametrize("device", DEVICES)
def test_a_few_steps_make_the_loss_fall(device: str, tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    base = tiny_model if device == "cpu" else copy.deepcopy(tiny_model).to(device=device, dtype=torch.bfloat16)
    model = trainable_model("lora", base, LoraOptions(**LORA))
    rows = [TrainRow((*tuple(tiny_tokenizer(t)["input_ids"]), 5, 9, 2), 3) for t, _ in TICKETS]
    settings = LoopSettings(epochs=10, learning_rate=2e-2, batch_tokens=256, max_batch_size=4, patience=10)
    before = evaluate_loss(model, rows, pad_id=2)
    report = train(model, rows, Validation(rows), settings, tmp_path / "ckpt", pad_id=2)
    # the frozen tied head of a random tiny model bounds how low LoRA can take the loss (~4.7 here)
    assert evaluate_loss(model, rows, pad_id=2) < before - 0.5
    assert report.useful_tokens > 0 and report.completion_tokens == 3 * len(rows) * report.epochs_run
    assert not any(p.requires_grad for n, p in tiny_model.named_parameters() if "lora" not in n and p.grad is not None)


def test_the_loss_is_on_completion_tokens_only(tiny_model: Any, tiny_tokenizer: Any) -> None:
    prompt = tuple(tiny_tokenizer("I was charged twice")["input_ids"])
    short, long = TrainRow((*prompt, 5, 2), 2), TrainRow((7, 7, 7, *prompt, 5, 2), 2)
    with torch.no_grad():
        both = batch_loss([short, long], tiny_model, 2)
        alone = batch_loss([short], tiny_model, 2).loss
        ids = torch.tensor([list(short.tokens)])
        logprobs = torch.log_softmax(tiny_model(ids).logits[0], -1)
        expected = -(logprobs[len(prompt) - 1, 5] + logprobs[len(prompt), 2]) / 2
    assert both.completion_tokens == 4 and both.useful_tokens == len(short.tokens) + len(long.tokens)
    assert float(alone) == pytest.approx(float(expected), abs=1e-4)


def test_a_shared_prefix_run_once_gives_the_loss_and_gradients_of_whole_rows(tiny_model: Any) -> None:
    from peft import get_peft_model

    from tuning.methods import lora_config

    model = get_peft_model(copy.deepcopy(tiny_model), lora_config(4, 8, 0.0, "all-linear"))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, 0, 0.02)  # B starts at zero: give the adapter an effect to check
    prefix = (1, 30, 31, 32, 33, 34)
    rows = [TrainRow((40, 41, 42, 5, 2), 2), TrainRow((43, 44, 5, 9, 2), 3), TrainRow((45, 6, 2), 2)]
    whole = [TrainRow((*prefix, *r.tokens), r.completion) for r in rows]

    def gradients(result: Any) -> dict[str, torch.Tensor]:
        model.zero_grad()
        result.loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    shared = batch_loss(rows, model, 2, prefix)
    expected = batch_loss(whole, model, 2)
    assert float(shared.loss.detach()) == pytest.approx(float(expected.loss.detach()), abs=1e-5)
    assert shared.useful_tokens == expected.useful_tokens and shared.computed_tokens < expected.computed_tokens
    got, want = gradients(shared), gradients(expected)
    assert all(torch.allclose(got[n], want[n], atol=1e-5) for n in want)
    assert any(float(g.abs().sum()) > 0 for n, g in got.items() if "lora_A" in n)


def test_lora_rung_trains_once_saves_a_card_and_reloads_identically(
    tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path
) -> None:
    ctx = context(tiny_model, tiny_tokenizer, tmp_path)
    config = LoraOptions(r=4, epochs=2, learning_rate=5e-3, batch_tokens=256, max_batch_size=4)
    first = TunedPredictor("lora", config, ctx)
    examples = [Example("q1", "charged twice again", "billing"), Example("q2", "app crashes", "technical")]
    outputs = first.predict(examples)
    assert first.trained_now and all(o.text in LABELS for o in outputs)
    card = read_card(first.artifact_dir)
    assert card.method == "lora" and card.base_fingerprint and card.data_hash and card.hyperparameters["r"] == 4
    assert card.total_parameters > card.trainable_parameters > 0 and card.train_examples > 0
    training = card.training
    assert training.seconds > 0 and training.peak_rss_mb > 0 and training.steps > 0 and training.best_epoch >= 1
    assert training.train_losses and training.validation_losses
    assert 0 < card.trainable_share < 0.5 and (first.artifact_dir / "card.md").read_text().startswith("# lora adapter")
    assert (first.artifact_dir / "adapter_model.safetensors").is_file()
    assert not first.artifact_dir.with_name(first.artifact_dir.name + ".partial").exists()
    second = TunedPredictor("lora", config, ctx)
    assert second.predict(examples) == outputs and not second.trained_now  # a cache hit trains nothing
    ids = torch.tensor([ctx.prompts.encode(examples[0])])
    with torch.no_grad():
        a, b = first.engine().model(ids).logits, second.engine().model(ids).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_merged_lora_matches_the_adapter(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    model = trainable_model("lora", tiny_model, LoraOptions(**LORA))
    rows = [TrainRow((*tuple(tiny_tokenizer(t)["input_ids"]), 5, 2), 2) for t, _ in TICKETS]
    settings = LoopSettings(epochs=1, learning_rate=5e-3, batch_tokens=256)
    train(model, rows, Validation(rows), settings, tmp_path / "c", pad_id=2)
    ids = torch.tensor([rows[0].tokens])
    with torch.no_grad():
        adapted = model(ids).logits
        merged = model.merge_and_unload()(ids).logits
    assert torch.allclose(adapted, merged, atol=1e-4)


def test_qlora_trains_on_cpu(tiny_model_dir: Path, tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    ctx = context(tiny_model, tiny_tokenizer, tmp_path, tiny_model_dir)
    config = LoraOptions(r=4, epochs=1, batch_tokens=256, max_batch_size=4, search=False)
    predictor = TunedPredictor("qlora", config, ctx)
    outputs = predictor.predict([Example("q", "charged twice", "billing")])
    card = predictor.card()
    assert card is not None
    assert outputs[0].text in LABELS and card.training.steps > 0 and card.method == "qlora"
    assert any("Linear4bit" in type(m).__name__ for m in predictor.engine().model.modules())


def test_every_qlora_adapter_weight_gets_a_gradient(tiny_model_dir: Path) -> None:
    from tuning.methods import quantized_base

    model = trainable_model("qlora", quantized_base(str(tiny_model_dir), "cpu"), LoraOptions(**LORA))
    model.train()
    with torch.no_grad():  # B starts at zero, which would leave every A without a gradient
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.01)
    ids = torch.randint(10, 400, (2, 9))
    model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits.float().logsumexp(
        -1
    ).sum().backward()
    trainable = [(n, p.grad) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(g is not None and float(g.abs().sum()) > 0 for _, g in trainable)


@pytest.mark.parametrize("method", ["full", "ia3"])
def test_full_and_ia3_train_and_reload(method: str, tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    ctx = context(tiny_model, tiny_tokenizer, tmp_path)
    config = TuneConfig(epochs=1, batch_tokens=256, max_batch_size=4, search=False)
    first = TunedPredictor(method, config, ctx)
    outputs = first.predict([Example("q", "charged twice", "billing")])
    again = TunedPredictor(method, config, ctx)
    assert again.predict([Example("q", "charged twice", "billing")]) == outputs and not again.trained_now
    card = first.card()
    assert card is not None and card.training.steps > 0
    assert (card.trainable_share == 1.0) if method == "full" else (0 < card.trainable_share < 0.05)


@pytest.mark.slow
def test_a_killed_training_run_resumes_and_ends_like_an_uninterrupted_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = [sys.executable, str(ROOT / "tests" / "tuning_worker.py"), str(tiny_model_dir)]
    killed_ckpt = tmp_path / "killed"
    killed_run = [*worker, str(killed_ckpt), str(tmp_path / "killed.safetensors")]
    clean_run = [*worker, str(tmp_path / "clean"), str(tmp_path / "clean.safetensors")]
    with running_beside(clean_run, env, tmp_path / "clean.log"):  # the uninterrupted run, in its own folder
        # killed with step 10's checkpoint in place and `latest` still naming step 9's
        kill_at(killed_run, env, "checkpoint written */step-10-*")
        resumed_step = int((killed_ckpt / "latest").read_text().split("-")[1])
        assert resumed_step == 9
        subprocess.run(killed_run, env=env, check=True)
    resumed, clean = load_file(str(tmp_path / "killed.safetensors")), load_file(str(tmp_path / "clean.safetensors"))
    assert resumed_step > 0 and resumed.keys() == clean.keys()
    for name in clean:
        assert torch.allclose(resumed[name], clean[name], atol=1e-5), name


def test_assess_reports_training_and_train_exports_adapter_and_merged_model(ticket_task: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from advisor.cli.main import main

    body = ticket_task.read_text().replace(
        "  - {rung: zero_shot, name: gen, mode: generate, max_new_tokens: 4}\n",
        "  - {rung: lora, r: [2, 4], epochs: 1, batch_tokens: 256, max_batch_size: 4, search: false}\n",
    )
    ticket_task.write_text(body)
    runner = CliRunner()
    result = runner.invoke(main, ["assess", str(ticket_task), "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    import json

    rungs = {r["name"]: r for r in json.loads((tmp_path / "r.json").read_text())["rungs"]}
    assert set(rungs) == {"zero_shot", "lora_r2", "lora_r4"} and rungs["zero_shot"]["training"] is None
    small, large = rungs["lora_r2"]["training"], rungs["lora_r4"]["training"]
    assert small["trained_now"] and small["trainable_parameters"] < large["trainable_parameters"]
    assert small["useful_tokens_per_s"] > 0 and small["seconds"] > 0
    assert len(small["validation_losses"]) == 2 and small["epochs_run"] == 1  # judged twice in its one epoch
    assert "accuracy" in json.loads((Path(small["artifact"]) / "card.json").read_text())["metrics"]
    forgetting = rungs["lora_r2"]["forgetting"]
    assert forgetting["weights_changed"] and forgetting["n_items"] >= 300 and len(forgetting["by_area"]) >= 8
    assert forgetting["delta"] == pytest.approx(forgetting["tuned_accuracy"] - forgetting["base_accuracy"])
    assert forgetting["ci_low"] <= forgetting["delta"] <= forgetting["ci_high"]
    assert not rungs["zero_shot"]["forgetting"]["weights_changed"]
    cost = rungs["lora_r2"]["cost"]
    assert cost["training"] > 0 and cost["hosted_training"] > 0 and cost["break_even_against"] == "zero_shot"
    exported = tmp_path / "adapter"
    trained = runner.invoke(main, ["train", str(ticket_task), "--rung", "lora_r2", "-o", str(exported)])
    assert trained.exit_code == 0 and "already trained (cached)" in trained.output, trained.output
    assert (exported / "adapter_model.safetensors").is_file() and (exported / "card.md").is_file()
    merged = tmp_path / "merged"
    result = runner.invoke(main, ["train", str(ticket_task), "--rung", "lora_r4", "--merge", "-o", str(merged)])
    assert result.exit_code == 0, result.output
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()
    refused = runner.invoke(main, ["train", str(ticket_task), "--rung", "zero_shot"])
    assert refused.exit_code == 2 and "prompting rung" in refused.stderr


def test_micro_batches_add_up_to_the_whole_batchs_gradient(tiny_model: Any) -> None:
    from peft import get_peft_model

    from tuning.loop import accumulated_backward
    from tuning.methods import lora_config

    model = get_peft_model(copy.deepcopy(tiny_model), lora_config(4, 8, 0.0, "all-linear"))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, 0, 0.02)
    rows = [TrainRow((*range(40, 40 + n), 5, 2), 2 + n % 2) for n in (3, 9, 4, 12, 6, 7)]
    prefix = (1, 30, 31, 32)

    def gradients(budget: int) -> tuple[float, dict[str, torch.Tensor]]:
        model.zero_grad()
        step = accumulated_backward(rows, model, 2, prefix, LoopSettings(micro_batch_tokens=budget))
        return step.loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    whole_loss, whole = gradients(10_000)
    split_loss, split = gradients(20)  # one or two rows per micro-batch
    assert split_loss == pytest.approx(whole_loss, abs=1e-5)
    assert all(torch.allclose(split[n], whole[n], atol=1e-6) for n in whole)
