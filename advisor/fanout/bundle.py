"""What travels between the driver and a worker: the task folder, and the cache folders a piece made."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError

# The task folder is copied to every worker: the data, corpora, probes and metric modules it names.
# What only the driver keeps (the result store and its neighbours) and version control stay behind.
_LEFT_BEHIND = {".advisor", ".git", "__pycache__", ".venv"}
MAX_BUNDLE_BYTES = 1 << 30
# In a piece's cache folder: the store (a file beside the folders) travels as rows; locks and
# unfinished work do not travel.
_NOT_CARRIED_SUFFIXES = (".lock", ".partial")


@dataclass(frozen=True)
class TaskBundle:
    """The task folder as bytes: the task file's name in it, and a tar of the folder."""

    task_file: str
    archive: bytes


def bundle_task(task_path: Path, store_folder: Path | None = None) -> TaskBundle:
    """The task file's folder, without the store (`.advisor`, or `store_folder` when it lies inside) and version
    control, as one archive."""
    folder = task_path.resolve().parent
    kept_here = store_folder.resolve() if store_folder is not None else None
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in _LEFT_BEHIND and Path(root, d) != kept_here)
            for name in sorted(files):
                path = Path(root) / name
                total += path.stat().st_size
                if total > MAX_BUNDLE_BYTES:
                    raise InputError(
                        f"{folder}: more than {MAX_BUNDLE_BYTES >> 20} MiB to copy to each Ray worker; keep large "
                        "files (models, corpora) outside the task folder at a path every node can read"
                    )
                archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return TaskBundle(task_path.name, buffer.getvalue())


def unpack_task(bundle: TaskBundle, folder: Path) -> Path:
    """The task copied into `folder`; returns its task file."""
    with tarfile.open(fileobj=io.BytesIO(bundle.archive)) as archive:
        archive.extractall(folder, filter="data")
    return folder / bundle.task_file


def pack_cache(cache_dir: Path, known: Collection[str] = ()) -> bytes:
    """The folders a piece made in its cache (adapters, searches, indexes), as one archive; `known` ("kind/name",
    what the driver sent it) stay behind."""
    folders = []
    for kind in sorted(p for p in cache_dir.iterdir() if p.is_dir()) if cache_dir.is_dir() else []:
        for item in sorted(kind.iterdir()):
            if item.name.endswith(_NOT_CARRIED_SUFFIXES) or item.name.startswith("."):
                continue
            if f"{kind.name}/{item.name}" not in known:
                folders.append(item)
    return pack_folders(cache_dir, folders)


def pack_folders(cache_dir: Path, folders: Sequence[Path]) -> bytes:
    """Folders of a cache (each `cache_dir/kind/name`), as one archive that install_cache takes in."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in folders:
            archive.add(folder, arcname=str(folder.relative_to(cache_dir)))
    return buffer.getvalue()


def install_cache(archive_bytes: bytes, cache_dir: Path) -> list[str]:
    """Put a piece's folders into the driver's cache, each renamed into place whole; those present stay."""
    installed: list[str] = []
    if not archive_bytes:
        return installed
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".incoming-") as staging:
        with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
            archive.extractall(staging, filter="data")
        for kind in sorted(Path(staging).iterdir()):
            for item in sorted(kind.iterdir()):
                target = cache_dir / kind.name / item.name
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)  # one rename: a kill leaves the folder whole or absent
                installed.append(f"{kind.name}/{item.name}")
    return installed
