"""Prompts: what the model reads, and the tokens each answer is scored on."""

from __future__ import annotations

from typing import Any

from harness.inference.prompts import PromptBuilder, PromptFormat
from harness.types import Example


def test_chat_prompt_has_the_instruction_labels_and_filled_template(tiny_tokenizer: Any) -> None:
    fmt = PromptFormat(instruction="Route it.", template="Ticket: {input}", labels=("billing", "access"))
    builder = PromptBuilder(tiny_tokenizer, fmt)
    text = tiny_tokenizer.decode(builder.encode(Example("a", "charged {twice} {labels}", "billing")))
    assert text.startswith("<|im_start|>system\nRoute it.\nAnswer with exactly one of: billing, access.<|im_end|>")
    assert "<|im_start|>user\nTicket: charged {twice} {labels}<|im_end|>" in text  # data braces untouched
    assert text.endswith("<|im_start|>assistant\n")


def test_chat_choice_tokens_end_with_the_end_of_turn(tiny_tokenizer: Any) -> None:
    builder = PromptBuilder(tiny_tokenizer, PromptFormat(labels=("billing",)))
    tokens = builder.choice_tokens("billing")
    assert tokens[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(tokens) == "billing<|im_end|>"


def test_text_prompt_is_exactly_the_template(tiny_tokenizer: Any) -> None:
    fmt = PromptFormat(
        template="Review: {input}\nSentiment:",
        chat=False,
        labels=("negative", "positive"),
        list_labels=False,
        choice_prefix=" ",
    )
    builder = PromptBuilder(tiny_tokenizer, fmt)
    assert tiny_tokenizer.decode(builder.encode(Example("a", "loved it", "positive"))) == "Review: loved it\nSentiment:"
    assert tiny_tokenizer.decode(builder.choice_tokens("positive")) == " positive"


def test_a_chat_records_own_system_prompt_replaces_the_instruction(tiny_tokenizer: Any) -> None:
    builder = PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Task instruction."))
    turns = ({"role": "system", "content": "Own system."}, {"role": "user", "content": "hi"})
    messages = builder.messages(Example("a", turns, "x"))
    assert messages == [{"role": "system", "content": "Own system."}, {"role": "user", "content": "hi"}]


def test_demonstrations_become_turns(tiny_tokenizer: Any) -> None:
    builder = PromptBuilder(tiny_tokenizer, PromptFormat(instruction="Route it."))
    messages = builder.messages(Example("q", "query", "?"), demos=[Example("d", "demo input", "billing")])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "billing"
