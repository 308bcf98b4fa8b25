"""Class labels: inferring them, renaming raw targets, checking targets, reading labels from text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.errors import InputError
from harness.types import Example

_EDGE_PUNCTUATION = " \t\n\r\"'`.,;:!?()[]{}*_-"


def label_text(value: Any) -> Any:
    """A number as a data file's label reads it (0 -> "0", 1.0 -> "1"); anything else (text, true) unchanged."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def infer_labels(examples: Sequence[Example]) -> tuple[str, ...]:
    """The sorted distinct targets: the label set when the task does not name one."""
    return tuple(sorted({example.target for example in examples}))


def rename_targets(examples: Sequence[Example], mapping: Mapping[str, str]) -> list[Example]:
    """Replace raw targets (e.g. 0/1) by their names (negative/positive); unknown raw targets stay."""
    return [replace(example, target=mapping.get(example.target, example.target)) for example in examples]


def check_targets(examples: Sequence[Example], labels: Sequence[str], source: str) -> None:
    """Every target must be one of the labels; the first that is not is named with its row."""
    allowed = set(labels)
    for index, example in enumerate(examples, start=1):
        if example.target not in allowed:
            raise InputError(
                f"{source} row {index} (id {example.id}): label '{example.target}' is not one of the labels "
                f"({', '.join(labels)})"
            )


def match_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a generated answer names, or None when it names none (or several).

    In order: the whole answer is a label (case and edge punctuation ignored); the answer starts
    with a label (the longest that fits); exactly one label appears in it as a whole phrase.
    """
    answer = _normal(text)
    if not answer:
        return None
    by_normal = {_normal(label): label for label in labels}
    if answer in by_normal:
        return by_normal[answer]
    for normal in sorted(by_normal, key=len, reverse=True):
        if normal and re.match(rf"{re.escape(normal)}\b", answer):
            return by_normal[normal]
    found = [label for normal, label in by_normal.items() if normal and re.search(rf"\b{re.escape(normal)}\b", answer)]
    return found[0] if len(found) == 1 else None


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip(_EDGE_PUNCTUATION).lower().replace("_", " ")).strip()
