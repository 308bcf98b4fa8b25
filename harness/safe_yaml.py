"""Reading a user's YAML: safe types only, aliases bounded, every problem one line naming the file and line.

A YAML alias is a reference, so a 1 KB file of nested aliases ("billion laughs") stands for billions
of values: whatever walks the loaded value (validation, a message, a hash) would take minutes and
gigabytes. The loader counts what the aliases expand to before anything is built, and refuses a file
past MAX_EXPANDED_VALUES, or one whose alias refers to itself.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import InputError

MAX_EXPANDED_VALUES = 100_000


class _TooLarge(Exception):
    pass


class _Recursive(Exception):
    pass


class BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses aliases expanding past MAX_EXPANDED_VALUES and recursive aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases_seen = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Count the aliases of the document (a file without any needs no expansion count)."""
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
        return super().compose_node(parent, index)

    def compose_document(self) -> Node | None:
        """The document's node, refused when its aliases expand too far."""
        node = super().compose_document()
        if node is not None and self.aliases_seen:
            _expanded_size(node, {}, set())
        return node  # type: ignore[no-any-return]

    def construct_yaml_int(self, node: ScalarNode) -> int:
        """An integer; one too long for Python to read (over 4300 digits) is a problem of the file, not a crash."""
        try:
            return super().construct_yaml_int(node)  # type: ignore[no-any-return]
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, "an integer too long to read", node.start_mark
            ) from None


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def _expanded_size(node: Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values the node stands for once every alias is expanded (each shared node counted once per use)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _Recursive
    open_nodes.add(key)
    total = 1
    if isinstance(node, SequenceNode):
        total += sum(_expanded_size(child, sizes, open_nodes) for child in node.value)
    elif isinstance(node, MappingNode):
        for name, value in node.value:
            total += _expanded_size(name, sizes, open_nodes) + _expanded_size(value, sizes, open_nodes)
    open_nodes.discard(key)
    if total > MAX_EXPANDED_VALUES:
        raise _TooLarge
    sizes[key] = total
    return total


def load_yaml(text: str, source: str) -> Any:
    """The file's value (safe types only); bad YAML is one InputError line starting with `source`."""
    try:
        return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass: safe types only
    except _TooLarge:
        raise InputError(
            f"{source}: too many YAML aliases (they expand to more than {MAX_EXPANDED_VALUES:,} values); "
            "write the values out instead"
        ) from None
    except _Recursive:
        raise InputError(f"{source}: a YAML alias refers to the value that contains it (a recursive value)") from None
    except yaml.MarkedYAMLError as error:
        # the line where the broken construct began helps more than where the parser gave up
        mark = error.context_mark or error.problem_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = error.problem or str(error).splitlines()[0]
        problem = f"{error.context}: {problem}" if error.context else problem
        raise InputError(f"{source}{where}: not valid YAML ({problem})") from None
    except yaml.YAMLError as error:
        raise InputError(f"{source}: not valid YAML ({str(error).splitlines()[0]})") from None
    except RecursionError:
        raise InputError(f"{source}: the YAML is nested too deeply") from None
