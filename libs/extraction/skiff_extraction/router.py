"""The router: which domains does a request involve, and what does it ask that no SLM covers?

A linear micro-model over each clause of the request ("…on the 16th. Book a hotel…, rent a
car…, and add insurance…"): a clause becomes a static sentence embedding (WordLlama's token
vectors averaged, `skiff_inference.static_embeddings`) and hashed word and character
n-grams; a linear layer scores every label (a softmax over the labels and "asks for none of
these", or one logistic unit per label: `RouterModel.link`). A request involves every label
some clause
passes the label's threshold for — a whole multi-domain request blurs its parts, its clauses
do not. A label between its floor and its threshold is *unsure*, and so is a request no
label passes: the planner then asks the LLM tier (reason `ambiguous`) instead of guessing.
Labels that are not one of the four domains (`UNSUPPORTED_WORK`: trains, restaurants, …)
are reported as unsupported work.

The model is a NumPy file with its card (`RouterModel.save`), trained by
`skiff_flywheel.router_training` and served as the registry task `router.route`; the planner
needs no torch and no model server. Routing a request takes well under a millisecond.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from skiff_contracts.domains import DOMAINS, ROUTE_LABELS, Domain, RouteLabels
from skiff_contracts.registry import (
    ROUTER_TASK,
    Evaluation,
    ModelCard,
    SchemaRef,
    model_id_for,
    schema_hash,
)

Vector = NDArray[np.float32]
RouteTier = Literal["slm", "llm"]
NGRAM_BUCKETS = 2**14
FeatureKind = Literal["static", "ngrams"]
Link = Literal["sigmoid", "softmax"]

# Sentence ends, semicolons, commas, dashes, "&", "+", and the words that join two requests.
_CLAUSE_BREAK = re.compile(
    r"(?<=[.;!?])\s+|[;,]\s*(?:(?:and|plus|also|then)\s+)?|\s+[-–—]\s+|\s*[&+]\s*"
    r"|\s+(?:and|plus|also|then|as well as|along with)\s+",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+|[0-9]+")
# Two airport codes joined ("SEA-ANC", "LHR > JFK", "DXB to IST"): a flight, whatever the words.
_CODE_PAIR = re.compile(r"\b[A-Z]{3}\s*(?:-|–|>|->|→|/|to)\s*[A-Z]{3}\b")
MAX_CLAUSES = 16


def split_clauses(text: str) -> list[str]:
    """The request's clauses, in order (at most `MAX_CLAUSES`; the rest stays in the last)."""
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK.split(text.strip()) if p and p.strip(" ,")]
    if len(parts) > MAX_CLAUSES:
        parts = [*parts[: MAX_CLAUSES - 1], " ".join(parts[MAX_CLAUSES - 1 :])]
    return parts or [text]


def segments(text: str) -> list[str]:
    """What the router scores: the whole request, and each of its clauses."""
    clauses = split_clauses(text)
    return clauses if len(clauses) == 1 else [text, *clauses]


def ngrams(text: str) -> list[str]:
    """Words, word pairs, and the 3- to 5-letter pieces of each word ("<hire>" → "<hi", …)."""
    words = _WORD.findall(text.casefold())
    grams = [f"w {w}" for w in words] + [f"b {a} {b}" for a, b in pairwise(words)]
    grams += ["p code pair"] * len(_CODE_PAIR.findall(text))
    for word in words:
        if word.isdigit():
            continue
        padded = f"<{word}>"
        grams += [f"c {padded[i : i + n]}" for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    return grams


@dataclass(frozen=True)
class ClauseFeatures:
    """One clause as the model reads it: a dense embedding and sparse hashed n-grams."""

    dense: Vector
    index: NDArray[np.int64]
    value: Vector


def hashed(grams: list[str]) -> tuple[NDArray[np.int64], Vector]:
    """Counts per bucket (CRC-32 of the n-gram), scaled to unit length."""
    if not grams:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    buckets = np.array([zlib.crc32(g.encode()) % NGRAM_BUCKETS for g in grams], np.int64)
    index, counts = np.unique(buckets, return_counts=True)
    value = counts.astype(np.float32)
    return index, value / float(np.linalg.norm(value))


class Embedder(Protocol):
    def embed(self, text: str) -> Vector: ...


class Featurizer:
    """What the model reads of a clause; `features` says which parts it uses."""

    def __init__(self, features: tuple[FeatureKind, ...], embedder: Embedder | None) -> None:
        if "static" in features and embedder is None:
            raise ValueError("a router with static embeddings needs an embedder")
        self.features = features
        self.embedder = embedder

    def __call__(self, clause: str) -> ClauseFeatures:
        dense = (
            self.embedder.embed(clause)
            if self.embedder is not None and "static" in self.features
            else np.zeros(0, np.float32)
        )
        index, value = hashed(ngrams(clause)) if "ngrams" in self.features else hashed([])
        return ClauseFeatures(dense, index, value)


@dataclass(frozen=True)
class RouterModel:
    """A linear model over a clause's features, with each label's decision band.

    `sigmoid`: one logistic unit per label. `softmax`: the labels and one more class,
    "asks for none of these", compete for each clause (its row is the last of the weights).
    """

    labels: tuple[str, ...]
    features: tuple[FeatureKind, ...]
    link: Link
    dense: Vector  # rows × embedding dimensions (0 columns without "static")
    sparse: Vector  # rows × NGRAM_BUCKETS (0 columns without "ngrams")
    bias: Vector
    thresholds: Vector  # a label is routed at or above its threshold
    floors: Vector  # between floor and threshold it is unsure
    card: Mapping[str, Any] = field(default_factory=dict)

    def probabilities(self, clause: ClauseFeatures) -> Vector:
        logits = self.bias.copy()
        if self.dense.shape[1]:
            logits += self.dense @ clause.dense
        if self.sparse.shape[1] and len(clause.index):
            logits += self.sparse[:, clause.index] @ clause.value
        if self.link == "softmax":
            exp = np.exp(logits - logits.max())
            result: Vector = (exp / exp.sum())[: len(self.labels)].astype(np.float32)
            return result
        sigmoid: Vector = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return sigmoid

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            labels=np.array(self.labels), features=np.array(self.features),
            link=np.array(self.link),
            dense=self.dense, sparse=self.sparse, bias=self.bias,
            thresholds=self.thresholds, floors=self.floors,
            card=np.array(json.dumps(dict(self.card), sort_keys=True)),
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path | None = None) -> RouterModel:
        """A saved model, by default the one shipped with Skiff."""
        with (
            (path or packaged_router()).open("rb") as handle,
            np.load(handle, allow_pickle=False) as data,
        ):
            labels = tuple(str(label) for label in data["labels"])
            unknown = set(labels) - set(ROUTE_LABELS)
            if unknown:
                raise ValueError(f"{path}: labels no route knows: {sorted(unknown)}")
            return cls(
                labels=labels,
                features=tuple(str(kind) for kind in data["features"]),  # type: ignore[misc]
                link=str(data["link"]),  # type: ignore[arg-type]
                dense=data["dense"].astype(np.float32),
                sparse=data["sparse"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
                thresholds=data["thresholds"].astype(np.float32),
                floors=data["floors"].astype(np.float32),
                card=json.loads(str(data["card"])),
            )


@dataclass(frozen=True)
class Route:
    """Which domains a request involves, what it asks that no micro-SLM covers, and how sure
    the router is."""

    domains: tuple[Domain, ...] = ()
    unsupported: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()  # labels scored between their floor and their threshold
    scores: Mapping[str, float] = field(default_factory=dict)
    by: RouteTier = "slm"
    latency_ms: float = 0.0

    @property
    def decided(self) -> bool:
        """Sure of every label, and found something: otherwise the LLM tier decides."""
        return not self.unsure and bool(self.domains or self.unsupported)

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.domains, *self.unsupported)


def route_of(labels: Iterable[str], **fields: Any) -> Route:
    """A route from a set of labels, in the canonical order."""
    labels = set(labels)
    return Route(
        domains=tuple(d for d in DOMAINS if d in labels),
        unsupported=tuple(
            label for label in ROUTE_LABELS if label in labels and label not in DOMAINS
        ),
        **fields,
    )


class Router(Protocol):
    def route(self, text: str) -> Route: ...


class SlmRouter:
    """A `RouterModel` over a request's clauses."""

    def __init__(self, model: RouterModel, embedder: Embedder | None = None) -> None:
        self.model = model
        self.embedder = embedder
        self.featurize = Featurizer(model.features, embedder)

    def scores(self, text: str) -> dict[str, float]:
        """Each label's highest probability over the text and its clauses."""
        clauses = [self.model.probabilities(self.featurize(c)) for c in segments(text)]
        best = np.max(clauses, axis=0)
        return {label: round(float(p), 4) for label, p in zip(self.model.labels, best, strict=True)}

    def route(self, text: str) -> Route:
        started = time.perf_counter()
        scores = self.scores(text)
        chosen, unsure = set(), []
        for label, threshold, floor in zip(
            self.model.labels, self.model.thresholds, self.model.floors, strict=True
        ):
            if scores[label] >= threshold:
                chosen.add(label)
            elif scores[label] >= floor:
                unsure.append(label)
        latency = (time.perf_counter() - started) * 1000
        return route_of(chosen, unsure=tuple(unsure), scores=scores, latency_ms=latency)


def packaged_router() -> Path:
    """The router file shipped with Skiff."""
    return Path(str(resources.files("skiff_extraction") / "data" / "router.npz"))


def router_card(path: Path | None = None) -> ModelCard:
    """The registry card of a router file (by default the shipped one): task `router.route`,
    the file as its artifact, its evaluation from the file's own card."""
    path = path or packaged_router()
    model = RouterModel.load(path)
    card = dict(model.card)
    schema = RouteLabels.model_json_schema()
    metrics = card.get("metrics", {})
    evaluations = tuple(
        Evaluation(dataset_id=f"router-held-out:{name}", metrics={
            k: float(v) for k, v in metrics[name].items() if isinstance(v, int | float)
        })
        for name in ("sgd-test", "written", "insurance-devset") if name in metrics
    )  # fmt: skip
    name, version = str(card.get("name", "router")), str(card.get("version", "0"))
    return ModelCard(
        model_id=model_id_for(ROUTER_TASK, name, version), task=ROUTER_TASK, name=name,
        version=version, base_model=f"{card.get('embedding', 'none')} + hashed n-grams",
        adapter=str(path), adapter_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        engine="numpy", output_schema=SchemaRef(
            schema_id="router.labels", version=1, sha256=schema_hash(schema)
        ),
        prompt_version=f"router-{'+'.join(model.features)}-{model.link}",
        evaluations=evaluations, owner="skiff",
    )  # fmt: skip


def load_router(path: Path | None = None) -> SlmRouter:
    """A saved router (by default the shipped one) with the embedder its features need."""
    model = RouterModel.load(path)
    embedder = None
    if "static" in model.features:
        from skiff_inference.static_embeddings import StaticEmbedder

        embedder = StaticEmbedder()
    return SlmRouter(model, embedder)
