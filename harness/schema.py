"""What every input schema shares: numbers that refuse true/false, and a validation error said in one line.

pydantic names the branch of a union that failed (`labels.list[str]`), which means nothing to whoever
wrote the file: the location here is walked along the schema so branch names are left out, and an
input that fits no branch is told what the field accepts.
"""

from __future__ import annotations

import inspect
import math
import reprlib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails


class _Bounded(reprlib.Repr):
    def repr_bool(self, x: bool, level: int) -> str:
        return "true" if x else "false"  # as the YAML or JSON the user wrote

    def repr_NoneType(self, x: None, level: int) -> str:  # reprlib dispatches on the type's name
        return "null"

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an integer past 4300 digits raises, and a long one is no help in a message anyway
        if x.bit_length() <= 128:
            return repr(x)
        return f"<an integer of {int(x.bit_length() * math.log10(2)) + 1} digits>"


_REPR = _Bounded()
_REPR.maxlevel = 3
_REPR.maxstring = 50
_REPR.maxother = 50
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4


def short_repr(value: Any, limit: int = 60) -> str:
    """The value for a one-line message; the work is bounded whatever its size (it may hold shared YAML aliases)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NumbersNotBooleans(BaseModel):
    """A base whose number fields refuse true/false (pydantic would read `true` as 1)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _number_only(field.annotation):
                raise ValueError("expected a number, not true or false")
        return value


def _number_only(annotation: Any) -> bool:
    """int or float (or None), and nothing a boolean could mean (bool, a Literal, Any)."""
    kinds = [a for a in _branches(_unwrap(annotation)) if a is not type(None)]
    return any(a in (int, float) for a in kinds) and all(a in (int, float) for a in kinds)


def describe_validation_error(error: ValidationError, model: type[BaseModel] | None, root: str = "task") -> str:
    """The first problem as 'field.path: what was expected (got …)', with no union branch named."""
    location, message, detail = validation_problem(error, model)
    return _line(location, message, detail, root)


def validation_problem(error: ValidationError, model: type[BaseModel] | None) -> tuple[str, str, ErrorDetails]:
    """The first problem: its location along `model` with no union branch named, what was wrong, and pydantic's
    detail of it."""
    errors = error.errors()
    first = errors[0]
    path, union_at, expected = _walk(model, first["loc"])
    if union_at is not None:
        # every branch failed: the branch that got furthest into the value says the most
        siblings = [e for e in errors if tuple(e["loc"][:union_at]) == tuple(first["loc"][:union_at])]
        deepest = max(siblings, key=lambda e: len(e["loc"]))
        if len(deepest["loc"]) > union_at + 1:
            first = deepest
            path, _, _ = _walk(model, first["loc"])
        else:
            return ".".join(path), f"expected {expected}", first
    kind = first["type"]
    message = first["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "string_type" and isinstance(first.get("input"), bool):
        message = "expected text; YAML reads a bare yes, no, on, off, true or false as a boolean, so quote it"
    return ".".join(path), message, first


def _line(location: str, message: str, detail: ErrorDetails, root: str) -> str:
    got = detail.get("input")
    hidden = detail["type"] in ("missing", "extra_forbidden") or isinstance(got, dict)
    return f"{location or root}: {message}" + ("" if hidden else f" (got {short_repr(got)})")


def _walk(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> tuple[list[str], int | None, str]:
    """(the location without branch names, the index in `loc` of the first union's branch name, what it accepts)."""
    path: list[str] = []
    annotation: Any = model
    description: str | None = None
    union_at: int | None = None
    expected = ""
    index = 0
    while index < len(loc):
        part = loc[index]
        annotation = _unwrap(annotation)
        branches = [b for b in _branches(annotation) if b is not type(None)]
        if annotation is not None and len(branches) > 1:  # pydantic put the branch's name here
            if union_at is None:
                union_at, expected = index, description or _accepted(branches)
            annotation = _branch(branches, part)
            index += 1
            continue
        if len(branches) == 1 and branches[0] is not annotation:  # X | None: no branch name
            annotation = branches[0]
            continue
        if isinstance(part, str) and (part.startswith(("function-", "union[")) or part == "[key]"):
            index += 1
            continue
        path.append(str(part))
        annotation, found = _inside(annotation, part)
        description = found if found is not None else description
        index += 1
    return path, union_at, expected


def _inside(annotation: Any, part: int | str) -> tuple[Any, str | None]:
    """The type found at `part` inside `annotation` (None when unknown), and a field's own description."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return (field.annotation, field.description) if field is not None else (None, None)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        return args[0], None
    if origin is dict and len(args) == 2:
        return args[1], None
    return None, None


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _branches(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(annotation)]
    return [annotation]


def _branch(branches: list[Any], name: int | str) -> Any:
    """The branch pydantic named `name` ('TokenPriceSpec', 'list[str]', 'str'), or None."""
    for branch in branches:
        if inspect.isclass(branch) and branch.__name__ == name:
            return branch
        origin = get_origin(branch)
        if origin is not None and str(name).startswith(f"{getattr(origin, '__name__', '')}["):
            return branch
    return None


_WORDS = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def _accepted(branches: list[Any]) -> str:
    """What the union's branches accept, in words: 'text or a mapping'."""
    words: list[str] = []
    for branch in branches:
        origin = get_origin(branch) or branch
        if origin is Literal:
            word = " or ".join(_literal(v) for v in get_args(branch))
        elif inspect.isclass(origin) and issubclass(origin, BaseModel):
            word = "a mapping"
        else:
            word = _WORDS.get(origin, "a value")
        if word not in words:
            words.append(word)
    return " or ".join(words)


def _literal(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)
