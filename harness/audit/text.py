"""The texts an audit compares: a normalised key for exact matches, the text to embed, the text to count."""

from __future__ import annotations

from harness.retrieval.demonstrations import example_text
from harness.types import Example


def normalise(text: str) -> str:
    """Casefolded, whitespace runs collapsed: 'Reset  my Password' and 'reset my password' match."""
    return " ".join(text.casefold().split())


def full_text(example: Example) -> str:
    """Everything the model reads of the input: chat turns with their roles, plus any context passage."""
    if isinstance(example.input, str):
        text = example.input
    else:
        text = "\n".join(f"{turn['role']}: {turn['content']}" for turn in example.input)
    context = example.meta.get("context")
    return f"{text}\n{context}" if context else text


def input_key(example: Example) -> str:
    """Two inputs with the same key are the same input (exact duplicates, leakage, label conflicts)."""
    return normalise(full_text(example))


def embedding_text(example: Example) -> str:
    """What near-duplicate search embeds: the user turns, so a system prompt shared by every row does not
    make all rows look alike; a context passage is part of the input."""
    context = example.meta.get("context")
    text = example_text(example)
    return f"{text}\n{context}" if context else text


def is_blank_input(example: Example) -> bool:
    """An input with no visible text (for chat: no user turn with any)."""
    return not example_text(example).strip()
