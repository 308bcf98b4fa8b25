"""The one registry every kind of plug-in goes into: rungs, tuning methods, task types, tracking sinks.

A registry maps names to items. Its entry point group is imported on the first lookup, so the built-in
items register exactly as a third-party package's do, and nothing is imported before it is needed.
A name is registered once: a plug-in that reuses a taken name fails loudly, naming both modules (the same
module registering again, as `importlib.reload` does, replaces its own item).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from harness.errors import InputError, RunError, did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    item: T
    origin: str  # the module that registered it


class Registry(Generic[T]):
    """Named items of one kind (`kind` names it in messages), filled from the entry point `group`."""

    def __init__(self, kind: str, group: str | None = None):
        self.kind = kind
        self.group = group
        self._entries: dict[str, _Entry[T]] = {}
        self._loaded = False

    def add(self, name: str, item: T, origin: str | None = None) -> T:
        """Register `item` as `name`; `origin` is the registering module (default: the caller's)."""
        origin = origin or caller_module()
        taken = self._entries.get(name)
        if taken is not None and taken.origin != origin:
            raise RunError(
                f"{self.kind} '{name}' is registered twice: by {taken.origin} and by {origin}; "
                "uninstall or rename one of them"
            )
        self._entries[name] = _Entry(item, origin)
        return item

    def get(self, name: str, where: str | None = None) -> T:
        """The item of this name; an unknown name lists the close matches and every known name."""
        self.load()
        entry = self._entries.get(name)
        if entry is not None:
            return entry.item
        hint = did_you_mean(name, self._entries)
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}unknown {self.kind} '{name}'{hint} (known: {', '.join(self.names())})")

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def load(self) -> None:
        """Import every module of the entry point group, once (the built-in ones included)."""
        if self._loaded or self.group is None:
            return
        self._loaded = True  # first: a module that looks a name up while it registers must not recurse
        for point in entry_points(group=self.group):
            point.load()  # a module already imported is not run again, so it does not register twice


def caller_module(depth: int = 2) -> str:
    """The `__name__` of the module running `depth` frames up: 1 the function calling this one, 2 its caller."""
    return str(sys._getframe(depth).f_globals.get("__name__", "?"))
