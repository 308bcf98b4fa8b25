"""File names made from names the user gives (a task's `name:`): one function, so none escapes its folder."""

from __future__ import annotations

import re
import unicodedata

MAX_SLUG_CHARS = 80
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


def file_slug(name: str, fallback: str = "task") -> str:
    """`name` as one safe path component: lower-case letters, digits, '_', '.', '-' only, no leading dot,
    at most MAX_SLUG_CHARS; `fallback` when nothing is left. '../x', '/etc/x' and 'a\\nb' stay in the folder."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE.sub("-", ascii_name.lower())
    slug = re.sub(r"\.{2,}", "-", slug)[:MAX_SLUG_CHARS].strip("._-")
    return slug or fallback
