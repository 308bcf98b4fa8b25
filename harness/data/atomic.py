"""Writing files and folders so that a reader, or a run killed midway, never sees half of one.

Temporary names carry the writer's process id. A run killed by SIGKILL cannot clean up after itself,
so the next writer in the same folder removes the leftovers of writers that are no longer alive (and
never those of a live process, which may be another run writing beside it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.pause_points import pause_point

_MARK = "~ladder"  # every temporary name holds `~ladder<pid>~`


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside `target` that replaces it when the block ends without error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_MARK}{os.getpid()}~", dir=target.parent))
    try:
        yield staging
        pause_point(f"writing {target}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}{_MARK}{os.getpid()}~", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        pause_point(f"writing {path}")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def sweep_leftovers(folder: Path) -> list[Path]:
    """Remove temporary files and folders that killed writers left in `folder`; returns what it removed."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        pid = _writer_pid(entry.name)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our temporary names."""
    return _writer_pid(name) is not None


def _writer_pid(name: str) -> int | None:
    if not name.startswith(".") or _MARK not in name:
        return None
    digits = name.split(_MARK, 1)[1].split("~", 1)[0]
    return int(digits) if digits.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
