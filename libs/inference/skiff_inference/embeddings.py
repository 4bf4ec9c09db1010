"""Sentence embeddings from a GGUF model in this process (mean-pooled hidden states).

Used by the planner's router. A decoder-only chat model is not a trained sentence encoder,
but a linear probe on its mean-pooled states separates travel requests well (see
`skiff_extraction/data/router.json` for the measured figures).
"""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import numpy as np
from numpy.typing import NDArray

from skiff_inference.llama_loading import without_extra_buffer_types
from skiff_inference.model_files import bundled_model_path

CONTEXT_TOKENS = 512


class LlamaEmbedder:
    """One embedding-mode `Llama`; `embed` is synchronous (call it from a worker thread)."""

    def __init__(self, model_path: Path | None = None, *, threads: int = 1) -> None:
        with without_extra_buffer_types():
            self.llm = llama_cpp.Llama(
                model_path=str(model_path or bundled_model_path()),
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_ctx=CONTEXT_TOKENS,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )

    def embed(self, text: str) -> NDArray[np.float32]:
        """The text's embedding (texts longer than the context are cut)."""
        tokens = self.llm.tokenize(text.encode(), add_bos=True)[: CONTEXT_TOKENS - 2]
        vector = self.llm.embed(self.llm.detokenize(tokens).decode(errors="ignore"))
        return np.asarray(vector, dtype=np.float32)
