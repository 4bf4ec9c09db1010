"""Static sentence embeddings: the mean of a text's token vectors, in NumPy, in microseconds.

The vectors are WordLlama's `l2_supercat` 256-dimensional token embeddings (distilled from
large models' input embeddings), shipped inside the `wordllama` wheel. Like the bundled
GGUF, the package is found with `importlib.util.find_spec` and never imported: its loader
tries to download the tokenizer from a model hub (it looks in the wrong folder for the copy
it ships), and nothing here may download at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from skiff_inference.model_files import ModelFileError

PACKAGE = "wordllama"
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
NAME = "wordllama-l2-supercat-256"
MAX_TOKENS = 256


def package_file(relative: str) -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"`{PACKAGE}` has no {relative}: install it with `pip install wordllama`")


class StaticEmbedder:
    """Token vectors averaged over the text; `embed` is pure NumPy and thread-safe."""

    def __init__(self) -> None:
        self.tokenizer = Tokenizer.from_file(str(package_file(TOKENIZER)))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.vectors: NDArray[np.float32] = load_file(str(package_file(WEIGHTS)))[
            "embedding.weight"
        ].astype(np.float32)

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    def embed(self, text: str) -> NDArray[np.float32]:
        """The mean token vector, unit length (zero for a text with no tokens)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids[:MAX_TOKENS]
        if not ids:
            return np.zeros(self.dimensions, np.float32)
        mean = self.vectors[np.clip(ids, 0, len(self.vectors) - 1)].mean(axis=0)
        result: NDArray[np.float32] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return result
