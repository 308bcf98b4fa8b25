"""The dpo rung on the tiny llama: the loss is the paper's, it learns a separable preference set, mined
pairs reject only wrong answers, bad preference files are one line, and `advisor assess` reports it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.data.preferences import load_preferences
from harness.errors import InputError
from tests.tuning.test_tuning import LABELS, LORA, context
from tuning.batch_loss import TrainRow, completion_logprobs
from tuning.dpo import DpoConfig, DpoPredictor
from tuning.methods import trainable_model
from tuning.options import LoraOptions
from tuning.preference_loop import PairRows, PreferenceSettings, reference_logprobs, train_preferences
from tuning.preference_loss import preference_loss


def plain_logprob(model: Any, row: TrainRow, prefix: tuple[int, ...] = ()) -> float:
    """The completion's log-probability from one plain forward pass of the whole row (no batching, no cache)."""
    tokens = [*prefix, *row.tokens]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0].float()
    start = len(tokens) - row.completion
    return sum(float(torch.log_softmax(logits[i - 1], -1)[tokens[i]]) for i in range(start, len(tokens)))


def test_completion_logprobs_equal_a_plain_forward_pass(tiny_model: Any) -> None:
    rows = [TrainRow((5, 9, 11, 4, 7), 2), TrainRow((8, 3, 6), 1), TrainRow((12, 4, 9, 9, 10, 3, 2), 3)]
    prefix = (1, 14, 15)
    batched = completion_logprobs(rows, tiny_model, 0, prefix)
    for value, row in zip(batched.tolist(), rows, strict=True):
        assert value == pytest.approx(plain_logprob(tiny_model, row, prefix), abs=1e-4)
    mean = completion_logprobs(rows, tiny_model, 0, prefix, mean=True)
    assert mean.tolist() == pytest.approx(
        [b / r.completion for b, r in zip(batched.tolist(), rows, strict=True)], abs=1e-5
    )


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_the_batch_loss_is_the_papers_formula_on_the_same_batch(loss_type: str, tiny_model: Any) -> None:
    policy = trainable_model("lora", tiny_model, LoraOptions(**{**LORA, "r": 2}))
    with torch.no_grad():  # a policy that differs from the reference
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    pairs = [
        PairRows(TrainRow((5, 9, 11, 4, 7), 2), TrainRow((5, 9, 11, 8, 3), 2)),
        PairRows(TrainRow((6, 3, 12), 1), TrainRow((6, 3, 13), 1)),
    ]
    beta, mean = 0.3, loss_type == "ipo"
    reference = [(plain_logprob(tiny_model, p.chosen), plain_logprob(tiny_model, p.rejected)) for p in pairs]
    with policy.disable_adapter():  # the reference is the model without this adapter's change
        ours_reference = reference_logprobs(policy, pairs, 0, (), mean)
    rows = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    logps = completion_logprobs(rows, policy, 0, (), mean=mean)
    ours = preference_loss(logps[:2], logps[2:], ours_reference[:, 0], ours_reference[:, 1], beta, loss_type)  # type: ignore[arg-type]
    expected = []
    for pair, (ref_c, ref_r) in zip(pairs, reference, strict=True):
        pi_c, pi_r = plain_logprob(policy, pair.chosen), plain_logprob(policy, pair.rejected)
        if mean:  # IPO on mean token log-probs
            n_c, n_r = pair.chosen.completion, pair.rejected.completion
            pi_c, pi_r, ref_c, ref_r = pi_c / n_c, pi_r / n_r, ref_c / n_c, ref_r / n_r
        h = (pi_c - ref_c) - (pi_r - ref_r)
        expected.append(
            -math.log(1 / (1 + math.exp(-beta * h))) if loss_type == "sigmoid" else (h - 1 / (2 * beta)) ** 2
        )
    assert float(ours.loss.detach()) == pytest.approx(sum(expected) / len(expected), rel=1e-4, abs=1e-6)


def test_preference_training_learns_a_separable_set(tiny_model: Any, tmp_path: Path) -> None:
    model = trainable_model("lora", tiny_model, LoraOptions(**{**LORA, "r": 4}))
    prompts = [(5 + i, 9, 11) for i in range(12)]
    pairs = [PairRows(TrainRow((*p, 20, 2), 2), TrainRow((*p, 21, 2), 2)) for p in prompts]  # always 20 over 21
    settings = PreferenceSettings(epochs=6, learning_rate=2e-2, beta=0.5, pairs_per_batch=4)
    report = train_preferences(model, pairs[:10], pairs[10:], settings, 0)
    assert report.step_losses[-1] < report.step_losses[0] < 0.70  # log 2 = 0.693 at the start
    assert report.train_reward_accuracy[-1] == 1.0 and report.train_reward_margin[-1] > report.train_reward_margin[0]
    assert report.validation_reward_accuracy[-1] == 1.0  # the preference carries over to unseen prompts
    assert report.chosen_logps[-1] > report.rejected_logps[-1]
    assert report.best_epoch == 6 and report.epochs_run == 6 and report.pairs_seen == 60


def test_mined_pairs_reject_only_wrong_answers(tiny_model: Any, tiny_tokenizer: Any, tmp_path: Path) -> None:
    ctx = context(tiny_model, tiny_tokenizer, tmp_path)
    predictor = DpoPredictor(DpoConfig(**{**LORA, "r": 2}, epochs=1, search=False), ctx)
    pairs = predictor.mine(ctx.engine, ctx.train)
    assert len(pairs) == len(ctx.train)
    for pair, example in zip(pairs, ctx.train, strict=True):
        assert pair.chosen == example.target and pair.rejected != example.target and pair.rejected in LABELS
        assert pair.source == "mined: sft"


def test_bad_preference_files_are_one_line_naming_the_row(tmp_path: Path) -> None:
    good = {"prompt": "I was charged twice", "chosen": "billing", "rejected": "technical"}
    cases = {
        "'rejected' is missing": [good, {"prompt": "x", "chosen": "a"}],
        "chosen and rejected are the same answer": [good, {"prompt": "x", "chosen": "a", "rejected": "a"}],
        "'chosen' is empty": [good, {"prompt": "x", "chosen": " ", "rejected": "b"}],
        "'rejected' must be text (got int)": [{"prompt": "x", "chosen": "a", "rejected": 3}],
        "must end with the user's message": [
            {
                "input": {"messages": [{"role": "system", "content": "s"}]},
                "preferred_output": [{"role": "assistant", "content": "a"}],
                "non_preferred_output": [{"role": "assistant", "content": "b"}],
            }
        ],
    }
    for message, rows in cases.items():
        path = tmp_path / "pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(InputError) as error:
            load_preferences(path)
        assert message in str(error.value) and f"{path} row {len(rows)}" in str(error.value), str(error.value)
    openai_row = {
        "input": {"messages": [{"role": "user", "content": "I was charged twice"}]},
        "preferred_output": [{"role": "assistant", "content": "billing"}],
        "non_preferred_output": [{"role": "assistant", "content": "technical"}],
    }
    path = tmp_path / "openai.jsonl"
    path.write_text(json.dumps(openai_row) + "\n")
    (pair,) = load_preferences(path)
    assert pair.prompt == ({"role": "user", "content": "I was charged twice"},) and (pair.chosen, pair.rejected) == (
        "billing",
        "technical",
    )


def test_micro_batches_give_the_whole_batchs_gradient(tiny_model: Any) -> None:
    from tuning.preference_loop import accumulated_pair_backward

    pairs = [PairRows(TrainRow((5 + i, 9, 11, 20, 2), 2), TrainRow((5 + i, 9, 11, 21, 2), 2)) for i in range(4)]
    grads = []
    for budget in (10_000, 10):  # everything at once; one pair per forward pass
        torch.manual_seed(0)  # the same adapter both times
        model = trainable_model("lora", tiny_model, LoraOptions(**{**LORA, "r": 2}))
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
        reference = torch.zeros((4, 2))
        settings = PreferenceSettings(beta=0.5, micro_batch_tokens=budget)
        step = accumulated_pair_backward(model, pairs, [0, 1, 2, 3], reference, settings, 0, ())
        grads.append((step.loss, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)
