"""Counts in our sentences: "1 row has", "3 rows have"."""

from __future__ import annotations

_SINGULAR = {
    "rows": "row",
    "classes": "class",
    "groups": "group",
    "examples": "example",
    "have": "has",
    "are": "is",
    "repeat": "repeats",
    "appear": "appears",
    "share": "shares",
    "errors": "error",
    "warnings": "warning",
}


def agree(count: int, phrase: str) -> str:
    """The count before a plural phrase, the phrase made singular for one: agree(1, 'rows have') is
    '1 row has', agree(3, 'rows have') is '3 rows have'."""
    if count != 1:
        return f"{count} {phrase}"
    return f"{count} " + " ".join(_SINGULAR.get(word, word) for word in phrase.split(" "))


def agreeing(count: int, verb: str) -> str:
    """The verb alone, agreeing with a count given earlier: agreeing(1, 'are') is 'is'."""
    return _SINGULAR.get(verb, verb) if count == 1 else verb
