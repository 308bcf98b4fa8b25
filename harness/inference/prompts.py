"""Turning an example into the exact tokens the model reads, and a label into the tokens it scores.

Chat models get their own chat template (system = the task's instruction); base models get plain
text. Prefix and query are always tokenized the same way in every rung, so results that are
computed with and without a cached prefix are over the same tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.types import Example, Message

INPUT_SLOT = "{input}"
LABELS_SLOT = "{labels}"
CONTEXT_SLOT = "{context}"
_SLOTS = re.compile("|".join(re.escape(slot) for slot in (INPUT_SLOT, LABELS_SLOT, CONTEXT_SLOT)))


@dataclass(frozen=True)
class PromptFormat:
    """How a task is put to the model; identical for every rung so rungs compare fairly."""

    instruction: str | None = None
    template: str = INPUT_SLOT
    chat: bool = True
    labels: tuple[str, ...] = ()
    list_labels: bool = True
    choice_prefix: str = ""

    def system_text(self) -> str | None:
        """The instruction, with the allowed answers listed when asked."""
        parts = [self.instruction] if self.instruction else []
        if self.labels and self.list_labels:
            parts.append("Answer with exactly one of: " + ", ".join(self.labels) + ".")
        return "\n".join(parts) or None

    def user_text(self, text: str, context: str = "") -> str:
        """The template filled in; plain replacement, so braces in data are never interpreted."""
        values = {INPUT_SLOT: text, LABELS_SLOT: ", ".join(self.labels), CONTEXT_SLOT: context}
        return _SLOTS.sub(lambda match: values[match.group(0)], self.template)


class PromptBuilder:
    """Encodes examples (with optional demonstrations) and answer choices with one tokenizer."""

    def __init__(self, tokenizer: Any, fmt: PromptFormat):
        self.tokenizer = tokenizer
        self.format = fmt
        self._choice_cache: dict[str, tuple[int, ...]] = {}

    def messages(self, example: Example, demos: Sequence[Example] = (), passages: Sequence[str] = ()) -> list[Message]:
        """The conversation for an example: system, demonstrations as turns, then the query (with passages)."""
        system = self.format.system_text()
        turns: list[Message] = [{"role": "system", "content": system}] if system else []
        for demo in demos:
            turns.extend(self._query_turns(demo))
            turns.append({"role": "assistant", "content": demo.target})
        query = self._query_turns(example, passages)
        if query and query[0]["role"] == "system":  # a chat record's own system prompt wins
            turns = [t for t in turns if t["role"] != "system"]
            turns = [query[0], *turns]
            query = query[1:]
        return turns + query

    def _query_turns(self, example: Example, passages: Sequence[str] = ()) -> list[Message]:
        block = _context_block(passages)
        if isinstance(example.input, str):
            text = self.format.user_text(example.input, str(example.meta.get("context", "")))
            return [{"role": "user", "content": block + text}]
        turns = [dict(turn) for turn in example.input]
        if block:
            last_user = max(i for i, turn in enumerate(turns) if turn["role"] == "user")
            turns[last_user]["content"] = block + turns[last_user]["content"]
        return turns

    def encode_messages(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of a conversation as given (no instruction added), ending where the model's answer begins.

        What `advisor serve` sends for a request that asks for no rung's prompt; the same rendering
        and tokenization as every rung's prompt, so a conversation a rung would build encodes the same.
        """
        if not self.format.chat:
            raise ValueError("a conversation needs a chat model (this prompt format is plain text)")
        return self._tokens(self._render(list(messages), generation_prompt=True))

    def text(self, example: Example, demos: Sequence[Example] = (), passages: Sequence[str] = ()) -> str:
        """The whole prompt as text, rendered exactly as it is tokenized (what a completions endpoint reads)."""
        if self.format.chat:
            return self._render(self.messages(example, demos, passages), generation_prompt=True)
        return "\n\n".join(self._text_blocks(example, demos, passages))

    def choice_text(self, answer: str) -> str:
        """An answer as the model writes it after the prompt, end-of-turn token included for chat models."""
        return str(self.tokenizer.decode(list(self.choice_tokens(answer)), skip_special_tokens=False))

    def encode(self, example: Example, demos: Sequence[Example] = ()) -> list[int]:
        """Token ids of the full prompt, ending where the model's answer begins."""
        prefix, query = self.split(example, demos)
        return prefix + query

    def split(
        self, example: Example, demos: Sequence[Example] = (), demos_shared: bool = True, passages: Sequence[str] = ()
    ) -> tuple[list[int], list[int]]:
        """(prefix, query) token ids: the prefix is what every prompt of a rung shares.

        The prefix holds the instruction, and the demonstrations when they are the same for every
        example (`demos_shared`). Both parts are always tokenized separately, so a prompt scored
        with a cached prefix and one scored whole are the same tokens.
        """
        shared_turns = self._shared_turn_count(example, demos if demos_shared else ())
        if self.format.chat:
            messages = self.messages(example, demos, passages)
            whole = self._render(messages, generation_prompt=True)
            head = self._render(messages[:shared_turns], generation_prompt=False) if shared_turns else ""
            if not whole.startswith(head):  # a template that renders a partial chat differently
                head = ""
            return self._tokens(head), self._tokens(whole[len(head) :])
        blocks = self._text_blocks(example, demos, passages)
        head_blocks = blocks[:shared_turns]
        head = "\n\n".join(head_blocks) + "\n\n" if head_blocks else ""
        query = "\n\n".join(blocks[shared_turns:])
        return self._tokens(head, special=True), self._tokens(query, special=not head)

    def _shared_turn_count(self, example: Example, shared_demos: Sequence[Example]) -> int:
        """How many leading turns (chat) or blocks (text) are the same for every example."""
        own_system = not isinstance(example.input, str) and any(t["role"] == "system" for t in example.input)
        if own_system:
            return 0
        system = 1 if self.format.system_text() else 0
        per_demo = 2 if self.format.chat else 1
        return system + per_demo * len(shared_demos)

    def _render(self, messages: list[Message], generation_prompt: bool) -> str:
        return str(
            self.tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=False)
        )

    def _tokens(self, text: str, special: bool = False) -> list[int]:
        if not text:
            return []
        return [int(t) for t in self.tokenizer(text, add_special_tokens=special)["input_ids"]]

    def _text_blocks(self, example: Example, demos: Sequence[Example], passages: Sequence[str] = ()) -> list[str]:
        blocks: list[str] = []
        system = self.format.system_text()
        if system:
            blocks.append(system)
        for demo in demos:
            blocks.append(_turns_text(self._query_turns(demo)) + self.format.choice_prefix + demo.target)
        blocks.append(_turns_text(self._query_turns(example, passages)))
        return blocks

    def choice_tokens(self, answer: str) -> tuple[int, ...]:
        """Tokens of an answer as the model would write it, end-of-turn included for chat models.

        For chat models the answer's tokens are what the chat template adds after the generation
        prompt, up to and including the end-of-turn token: scoring that end token stops a label
        that is a prefix of another ("bill" vs "billing") from winning by being short.
        """
        if answer not in self._choice_cache:
            self._choice_cache[answer] = tuple(self._compute_choice_tokens(answer))
        return self._choice_cache[answer]

    def _compute_choice_tokens(self, answer: str) -> list[int]:
        if not self.format.chat:
            return self.tokenizer(self.format.choice_prefix + answer, add_special_tokens=False)["input_ids"]
        probe: list[Message] = [{"role": "user", "content": "?"}]
        prefix = _as_ids(self.tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=True))
        full = _as_ids(
            self.tokenizer.apply_chat_template([*probe, {"role": "assistant", "content": answer}], tokenize=True)
        )
        eos = self.tokenizer.eos_token_id
        if full[: len(prefix)] != prefix:
            tokens = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            return [*tokens, eos] if eos is not None else tokens
        suffix = full[len(prefix) :]
        if eos is not None and eos in suffix:
            suffix = suffix[: suffix.index(eos) + 1]
        return suffix


def _context_block(passages: Sequence[str]) -> str:
    """Retrieved passages, numbered, before the question."""
    if not passages:
        return ""
    return "Context:\n" + "\n".join(f"[{n}] {text}" for n, text in enumerate(passages, start=1)) + "\n\n"


def _turns_text(turns: list[Message]) -> str:
    return "\n".join(turn["content"] for turn in turns if turn["role"] != "system")


def _as_ids(encoded: Any) -> list[int]:
    """apply_chat_template returns a list in some versions and a BatchEncoding in others."""
    if isinstance(encoded, Mapping):
        encoded = encoded["input_ids"]
    return [int(t) for t in encoded]
