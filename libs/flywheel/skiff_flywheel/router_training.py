"""Train, calibrate and measure a router (`skiff_extraction.router.RouterModel`).

One logistic regression per label (scikit-learn, training only: the planner serves the
weights with NumPy) over the features a `Featurizer` makes of each training text. Then, on
the *dev* requests, routed clause by clause as the planner routes them:

* each label's threshold maximises its F1, averaged over the dev sources (SGD's dialogues
  and the hand-written dev set count alike, so SGD's phrasings do not set every threshold);
* its floor bounds the uncertainty band: at most `band_share` of the dev requests without
  the label score in [floor, threshold), and those go to the LLM tier as `ambiguous`.

`route_metrics` gives the figures the router is held to, on any set of labelled requests.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from skiff_contracts.domains import DOMAINS, ROUTE_LABELS
from skiff_contracts.registry import ROUTER_TASK
from skiff_extraction.router import (
    NGRAM_BUCKETS,
    Embedder,
    FeatureKind,
    Featurizer,
    Link,
    Route,
    RouterModel,
    SlmRouter,
)
from skiff_flywheel.router_data import Labelled, RouterSources, held_out_sets
from skiff_inference.static_embeddings import NAME as EMBEDDING_NAME
from skiff_inference.static_embeddings import StaticEmbedder

THRESHOLD_GRID = np.round(np.arange(0.2, 0.91, 0.025), 3)


@dataclass(frozen=True)
class RouterRecipe:
    features: tuple[FeatureKind, ...] = ("static", "ngrams")
    c: float = 1.0  # inverse regularisation strength
    band_share: float = 0.005
    dense_weight: float = 1.0  # the embedding block's scale against the n-gram block's
    balanced: bool = False  # weigh a label's few positives as much as its many negatives
    link: Link = "softmax"


def design_matrix(featurize: Featurizer, texts: Sequence[str], dense_weight: float) -> Any:
    """The texts' features as one sparse matrix: [embedding | hashed n-grams]."""
    rows = [featurize(text) for text in texts]
    dense_width = len(rows[0].dense) if rows else 0
    dense = sparse.csr_matrix(np.array([r.dense for r in rows], np.float32) * dense_weight)
    ngrams = sparse.csr_matrix(
        (np.concatenate([r.value for r in rows]),
         np.concatenate([r.index for r in rows]),
         np.cumsum([0, *(len(r.index) for r in rows)])),
        shape=(len(rows), NGRAM_BUCKETS if "ngrams" in featurize.features else 0),
    )  # fmt: skip
    return sparse.hstack([dense, ngrams]).tocsr() if dense_width else ngrams


def fit(
    examples: Sequence[Labelled], recipe: RouterRecipe, embedder: Embedder | None
) -> RouterModel:
    """Weights per label; thresholds and floors still at 0.5 (see `calibrate`)."""
    featurize = Featurizer(recipe.features, embedder)
    x = design_matrix(featurize, [e.text for e in examples], recipe.dense_weight)
    dense_width = x.shape[1] - (NGRAM_BUCKETS if "ngrams" in recipe.features else 0)
    labels = tuple(label for label in ROUTE_LABELS if any(label in e.labels for e in examples))
    if recipe.link == "softmax":
        w, bias = _fit_softmax(x, examples, labels, recipe)
    else:
        w, bias = _fit_sigmoids(x, examples, labels, recipe)
    w[:, :dense_width] *= recipe.dense_weight  # serve raw embeddings
    half = np.full(len(labels), 0.5, np.float32)
    return RouterModel(
        labels=labels, features=recipe.features, link=recipe.link, dense=w[:, :dense_width],
        sparse=w[:, dense_width:], bias=bias, thresholds=half, floors=half,
    )  # fmt: skip


def _fit_sigmoids(
    x: Any, examples: Sequence[Labelled], labels: tuple[str, ...], recipe: RouterRecipe
) -> tuple[np.ndarray, np.ndarray]:
    weights, bias = [], []
    for label in labels:
        y = np.array([label in e.labels for e in examples])
        model = LogisticRegression(
            C=recipe.c, solver="liblinear", max_iter=200,
            class_weight="balanced" if recipe.balanced else None,
        )  # fmt: skip
        model.fit(x, y)
        weights.append(model.coef_[0])
        bias.append(float(model.intercept_[0]))
    return np.array(weights, np.float32), np.array(bias, np.float32)


def _fit_softmax(
    x: Any, examples: Sequence[Labelled], labels: tuple[str, ...], recipe: RouterRecipe
) -> tuple[np.ndarray, np.ndarray]:
    """One class per label plus "none" (the last); an example with several labels counts
    once for each."""
    rows, classes = [], []
    for i, example in enumerate(examples):
        for label in sorted(example.labels) or ["none"]:
            rows.append(i)
            classes.append(labels.index(label) if label in labels else len(labels))
    model = LogisticRegression(C=recipe.c, max_iter=300)
    model.fit(x[rows], np.array(classes))
    order = [list(model.classes_).index(k) for k in range(len(labels) + 1)]
    return (np.asarray(model.coef_, np.float32)[order],
            np.asarray(model.intercept_, np.float32)[order])  # fmt: skip


def score_matrix(router: SlmRouter, examples: Sequence[Labelled]) -> np.ndarray:
    """Each example's score per label (the router's labels, in order), each routed once."""
    labels = router.model.labels
    rows = (router.scores(e.text) for e in examples)
    return np.array([[scores[label] for label in labels] for scores in rows])


def calibrate(
    model: RouterModel, embedder: Embedder | None, dev: Sequence[Labelled], band_share: float
) -> RouterModel:
    """Thresholds (best F1 per label) and floors (the uncertainty band) from dev requests."""
    scores = score_matrix(SlmRouter(model, embedder), dev)
    sources = sorted({e.source for e in dev})
    thresholds, floors = [], []
    for j, label in enumerate(model.labels):
        truth = np.array([label in e.labels for e in dev])
        best, best_f1 = 0.5, -1.0
        for t in THRESHOLD_GRID:
            f1 = np.mean([_f1(scores[:, j] >= t, truth, [e.source == s for e in dev])
                          for s in sources])  # fmt: skip
            if f1 > best_f1 + 1e-9:
                best, best_f1 = float(t), float(f1)
        negatives = scores[~truth, j]
        floor = float(np.quantile(negatives, 1 - band_share)) if len(negatives) else best
        thresholds.append(best)
        floors.append(min(best, max(floor, 0.05)))
    return RouterModel(
        labels=model.labels, features=model.features, link=model.link, dense=model.dense,
        sparse=model.sparse,
        bias=model.bias, thresholds=np.array(thresholds, np.float32),
        floors=np.array(floors, np.float32), card=model.card,
    )  # fmt: skip


def _f1(chosen: np.ndarray, truth: np.ndarray, mask: list[bool]) -> float:
    """F1 of one label's decisions on one source's dev requests (1.0 with nothing to find)."""
    chosen, truth = chosen[mask], truth[mask]
    if not truth.any() and not chosen.any():
        return 1.0
    return 2 * float((chosen & truth).sum()) / float(chosen.sum() + truth.sum())


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def route_metrics(cases: Sequence[tuple[Labelled, Route]]) -> dict[str, Any]:
    """The router's figures on labelled requests (`None` where a set has no such request)."""
    travel = set(DOMAINS)
    single = [(e, r) for e, r in cases if len(e.labels & travel) == 1 and e.kind == "single"]
    multi = [(e, r) for e, r in cases if len(e.labels & travel) > 1]
    non_travel = [(e, r) for e, r in cases if not e.labels & travel]
    with_unsupported = [(e, r) for e, r in cases if e.labels - travel]
    return {
        "requests": len(cases),
        "single_recall": _share(sum(bool(e.labels & set(r.domains)) for e, r in single),
                                len(single)),
        "single_exact": _share(sum(set(r.domains) == e.labels & travel for e, r in single),
                               len(single)),
        "multi_exact": _share(sum(set(r.domains) == e.labels & travel for e, r in multi),
                              len(multi)),
        "non_travel_given_travel": _share(sum(bool(r.domains) for _, r in non_travel),
                                          len(non_travel)),
        "unsupported_named": _share(
            sum(e.labels - travel <= set(r.unsupported) for e, r in with_unsupported),
            len(with_unsupported)),
        "escalated": _share(sum(not r.decided for _, r in cases), len(cases)),
        "counts": {"single": len(single), "multi": len(multi), "non_travel": len(non_travel),
                   "with_unsupported": len(with_unsupported)},
    }  # fmt: skip


def measure(router: Any, examples: Sequence[Labelled]) -> tuple[dict[str, Any], list[Route]]:
    """Route every request once; the metrics and the routes (with their latencies)."""
    routes = []
    for example in examples:
        started = time.perf_counter()
        route = router.route(example.text)
        routes.append(
            Route(route.domains, route.unsupported, getattr(route, "unsure", ()),
                  by="slm", latency_ms=(time.perf_counter() - started) * 1000)
        )  # fmt: skip
    metrics = route_metrics(list(zip(examples, routes, strict=True)))
    latencies = np.array([r.latency_ms for r in routes]) if routes else np.zeros(1)
    metrics["ms_per_request"] = {"mean": round(float(latencies.mean()), 3),
                                 "p95": round(float(np.quantile(latencies, 0.95)), 3)}  # fmt: skip
    return metrics, routes


@dataclass(frozen=True)
class Trained:
    model: RouterModel
    figures: dict[str, Any]  # per set: `route_metrics` and ms per request
    seconds: float


def train_router(
    examples: Sequence[Labelled],
    held_out: Mapping[str, Sequence[Labelled]],
    recipe: RouterRecipe,
    embedder: Embedder | None,
) -> Trained:
    """Fit on the train split, calibrate on dev, measure on dev and every held-out set."""
    started = time.perf_counter()
    train = [e for e in examples if e.split == "train"]
    dev = [e for e in examples if e.split == "dev"]
    model = calibrate(fit(train, recipe, embedder), embedder, dev, recipe.band_share)
    seconds = round(time.perf_counter() - started, 1)
    router = SlmRouter(model, embedder)
    figures = {"dev": measure(router, dev)[0]}
    figures |= {name: measure(router, cases)[0] for name, cases in held_out.items()}
    return Trained(model, figures, seconds)


def with_card(model: RouterModel, card: Mapping[str, Any]) -> RouterModel:
    return RouterModel(
        labels=model.labels, features=model.features, link=model.link, dense=model.dense,
        sparse=model.sparse, bias=model.bias, thresholds=model.thresholds, floors=model.floors,
        card=card,
    )  # fmt: skip


def dev_score(metrics: Mapping[str, Any]) -> float:
    """What choosing between candidates weighs: every figure the router is held to, alike."""
    return (
        (metrics["single_recall"] or 0) + (metrics["multi_exact"] or 0)
        + (metrics["unsupported_named"] or 0) - (metrics["non_travel_given_travel"] or 0)
    )  # fmt: skip


def digest(examples: Sequence[Labelled]) -> str:
    text = "\n".join(f"{e.source}\t{e.group}\t{e.text}\t{sorted(e.labels)}" for e in examples)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Built:
    chosen: str
    model: RouterModel  # the chosen candidate, its card filled in
    results: dict[str, Any]  # per candidate: recipe, train seconds, figures per set


def build_router(
    sources: RouterSources,
    candidates: Mapping[str, RouterRecipe],
    *,
    name: str,
    version: str,
    progress: Callable[[str], None] = lambda _: None,
) -> Built:
    """Train every candidate, choose the one with the best dev figures, card it."""
    examples = sources.everything()
    held = held_out_sets(examples)
    embedder = StaticEmbedder()
    trained = {}
    for label, recipe in candidates.items():
        trained[label] = train_router(examples, held, recipe, embedder)
        progress(f"{label}: dev {trained[label].figures['dev']}")
    results = {
        label: {"recipe": candidates[label].__dict__, "train_seconds": t.seconds, **t.figures}
        for label, t in trained.items()
    }
    chosen = max(results, key=lambda label: dev_score(results[label]["dev"]))
    train = [e for e in examples if e.split == "train"]
    dev = [e for e in examples if e.split == "dev"]
    card = {
        "task": ROUTER_TASK, "name": name, "version": version, "candidate": chosen,
        "embedding": EMBEDDING_NAME, "recipe": candidates[chosen].__dict__,
        "data": {"train": len(train), "dev": len(dev), "sha256": digest([*train, *dev]),
                 "generated": sources.generated, "seed": sources.seed,
                 "call_log": len(sources.call_log)},
        "metrics": {k: v for k, v in results[chosen].items() if k != "recipe"},
    }  # fmt: skip
    return Built(chosen, with_card(trained[chosen].model, card), results)
