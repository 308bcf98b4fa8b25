"""A request body as JSON data that every later step can handle, or a 400 saying why not.

Python's parser accepts two things the rest of the server cannot: nesting so deep that walking it
overflows the stack, and lone UTF-16 surrogates (`"\\ud800"`, or their bytes), which are no text a
tokenizer can encode or a response can echo. Both are refused here, once, before validation.
"""

from __future__ import annotations

import json
import re
from typing import Any

from advisor.serving.errors import APIError

MAX_DEPTH = 64  # levels of arrays and objects; OpenAI's deepest request shapes need fewer than 10
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_body(body: bytes) -> dict[str, Any]:
    """The body's JSON object; an APIError (400) when it is not JSON, too deep, not an object or not text."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:
        raise APIError(400, f"body: not valid JSON ({error})", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, "body: expected a JSON object", code="invalid_json")
    _check_values(data)
    return data


def _check_values(data: dict[str, Any]) -> None:
    """Walked without recursion, so its own depth is no risk; the first bad place is named."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH and isinstance(value, (dict, list)):
            raise _too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, (*path, key))
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(index))) for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path)


def _check_text(text: str, path: tuple[str, ...]) -> None:
    found = _SURROGATE.search(text)
    if found is None:
        return
    field = ".".join(_SURROGATE.sub("?", part) for part in path) or "body"
    code = f"U+{ord(found.group()):04X}"
    message = f"{field}: not valid Unicode text (a lone surrogate, {code}); send UTF-8 text"
    raise APIError(400, message, param=field, code="invalid_value")


def _too_deep() -> APIError:
    return APIError(400, f"body: nested deeper than {MAX_DEPTH} levels of arrays and objects", code="invalid_json")
