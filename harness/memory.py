"""Giving freed memory back to the system between phases (a rung, a trial), so that the next one's peak
starts from what is live rather than from what the last one left behind."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache
from typing import Any


def release_memory() -> None:
    """Collect reference cycles (a trained model, its optimizer and graph hold some) and hand glibc's free heap
    pages back: without `malloc_trim`, the freed activations of one phase stay resident into the next."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no C library found, or one without malloc_trim (musl)
        return None
