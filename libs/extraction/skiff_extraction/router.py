"""The router: which domains does a request involve, and what does it ask that no SLM covers?

An embedding router. The request is embedded once with the bundled model (mean-pooled
hidden states through llama.cpp), and a linear one-vs-rest classifier — trained offline by
`libs/extraction/train_router.py`, weights committed in `data/router.json` — scores each
label. Labels past their threshold are chosen. Labels that are not one of the four domains
(trains, buses, restaurants, events) are reported as unsupported work, which the planner
sends to the LLM tier as `no_model` instead of pretending to book it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from skiff_contracts.domains import DOMAINS, Domain

Vector = NDArray[np.float32]


@dataclass(frozen=True)
class Route:
    """Which domains a request involves, and what it asks for that no micro-SLM covers."""

    domains: tuple[Domain, ...]
    unsupported: tuple[str, ...] = ()


class Router(Protocol):
    def route(self, text: str) -> Route: ...


class Embedder(Protocol):
    def embed(self, text: str) -> Vector: ...


@dataclass(frozen=True)
class RouterWeights:
    """A linear classifier over standardised, L2-normalised embeddings."""

    labels: tuple[str, ...]
    mean: Vector
    scale: Vector
    weights: Vector  # labels × dim
    bias: Vector
    thresholds: Vector
    metrics: dict[str, Any]

    def probabilities(self, embedding: Vector) -> Vector:
        unit = embedding / max(float(np.linalg.norm(embedding)), 1e-12)
        logits = self.weights @ ((unit - self.mean) / self.scale) + self.bias
        result: Vector = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return result

    def to_json(self) -> str:
        return json.dumps(
            {
                "labels": list(self.labels),
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "weights": self.weights.tolist(),
                "bias": self.bias.tolist(),
                "thresholds": self.thresholds.tolist(),
                "metrics": self.metrics,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RouterWeights:
        data = json.loads(text)
        mean, scale, weights, bias, thresholds = (
            np.asarray(data[key], dtype=np.float32)
            for key in ("mean", "scale", "weights", "bias", "thresholds")
        )
        return cls(
            labels=tuple(data["labels"]),
            mean=mean,
            scale=scale,
            weights=weights,
            bias=bias,
            thresholds=thresholds,
            metrics=data.get("metrics", {}),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> RouterWeights:
        """The committed weights, or a file trained elsewhere."""
        if path is not None:
            return cls.from_json(path.read_text())
        packaged = resources.files("skiff_extraction") / "data" / "router.json"
        return cls.from_json(packaged.read_text())


class EmbeddingRouter:
    def __init__(self, embedder: Embedder, weights: RouterWeights) -> None:
        self.embedder = embedder
        self.weights = weights

    def scores(self, text: str) -> dict[str, float]:
        probabilities = self.weights.probabilities(self.embedder.embed(text))
        return {
            label: float(p) for label, p in zip(self.weights.labels, probabilities, strict=True)
        }

    def route(self, text: str) -> Route:
        scores = self.scores(text)
        chosen = [
            label
            for label, threshold in zip(self.weights.labels, self.weights.thresholds, strict=True)
            if scores[label] >= threshold
        ]
        return Route(
            domains=tuple(d for d in DOMAINS if d in chosen),
            unsupported=tuple(label for label in chosen if label not in DOMAINS),
        )


class LlamaEmbedder:
    """Mean-pooled embeddings from a GGUF model, in this process."""

    def __init__(self, model_path: Path | None = None, *, threads: int = 1) -> None:
        import llama_cpp

        from skiff_inference.llama_loading import without_extra_buffer_types
        from skiff_inference.model_files import bundled_model_path

        with without_extra_buffer_types():
            self.llm = llama_cpp.Llama(
                model_path=str(model_path or bundled_model_path()),
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_ctx=512,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )

    def embed(self, text: str) -> Vector:
        # 512 tokens of context; request texts are capped at 2000 characters upstream.
        tokens = self.llm.tokenize(text.encode(), add_bos=True)[:510]
        vector = self.llm.embed(self.llm.detokenize(tokens).decode(errors="ignore"))
        return np.asarray(vector, dtype=np.float32)


def load_router(model_path: Path | None = None, threads: int = 1) -> EmbeddingRouter:
    """The router with the bundled model (or `model_path`) and the committed weights."""
    return EmbeddingRouter(LlamaEmbedder(model_path, threads=threads), RouterWeights.load())
