"""The router: which domains does a request involve, and what does it ask that no SLM covers?

An embedding router. The request is split into clauses ("…on the 16th. Book a hotel…, rent
a car…, and add insurance…"), each clause is embedded with the bundled model (mean-pooled
hidden states through llama.cpp), and a linear one-vs-rest classifier — trained offline on
clauses by `libs/extraction/train_router.py`, weights committed in `data/router.json` —
scores each label. The request involves every label some clause passes the threshold for:
a whole multi-domain request embeds as a blur of its parts, its clauses do not. Labels that
are not one of the four domains (trains, buses, restaurants, events) are reported as
unsupported work, which the planner sends to the LLM tier as `no_model` instead of
pretending to book it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from skiff_contracts.domains import DOMAINS, Domain

Vector = NDArray[np.float32]

_VERBS = "add|book|rent|hire|get|reserve|stay|need|want|find|fly|insure|take|also|plus|then"
# Sentence ends, semicolons, ", and", and a comma or "and" before a new request's verb.
_CLAUSE_BREAK = re.compile(
    rf"(?<=[.;!?])\s+|;\s*|,\s*and\s+|(?:,\s*|\s+and\s+)(?=(?:{_VERBS})\b)", re.IGNORECASE
)
MAX_CLAUSES = 12


def split_clauses(text: str) -> list[str]:
    """The request's clauses, in order (at most `MAX_CLAUSES`; the rest stays in the last)."""
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK.split(text.strip()) if p and p.strip(" ,")]
    if len(parts) > MAX_CLAUSES:
        parts = [*parts[: MAX_CLAUSES - 1], " ".join(parts[MAX_CLAUSES - 1 :])]
    return parts or [text]


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
        """Each label's highest probability over the text's clauses."""
        probabilities = np.max(
            [self.weights.probabilities(self.embedder.embed(c)) for c in split_clauses(text)],
            axis=0,
        )
        labels = self.weights.labels
        return {label: float(p) for label, p in zip(labels, probabilities, strict=True)}

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


def load_router(model_path: Path | None = None, threads: int = 1) -> EmbeddingRouter:
    """The router with the bundled model (or `model_path`) and the committed weights."""
    from skiff_inference.embeddings import LlamaEmbedder

    return EmbeddingRouter(LlamaEmbedder(model_path, threads=threads), RouterWeights.load())
