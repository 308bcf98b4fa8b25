"""Where a Ray task keeps its work: a folder the driver names in its own store folder, so a retry finds it.

A task killed mid-way is run again by Ray, on whatever worker is free. When its work folder is one the new
worker can reach (the driver's store folder on a filesystem the nodes share, or the same machine), the retry
resumes from what the killed attempt left there: a trial's training checkpoints, an evaluation's stored
answers. Where the node cannot make that folder, the task works in a temporary one and a retry starts over.
Only the task's own scratch is written there; the store and the cache beside it stay the driver's alone.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRATCH = "ray-work"


def scratch_root(store_path: Path) -> Path:
    """The folder beside the driver's store that holds its tasks' work folders."""
    return store_path.parent / SCRATCH


@contextmanager
def work_folder(scratch: Path) -> Iterator[Path]:
    """The task's cache folder: `scratch` where this node can make it, else a temporary folder. Removed once the
    task has packed its results (a task that fails leaves it, for its retry)."""
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError:  # the driver's folder is on a filesystem this node does not share
        with tempfile.TemporaryDirectory(prefix="ladder-piece-") as folder:
            yield Path(folder)
        return
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)
