"""Train the planner's embedding router and write `skiff_extraction/data/router.json`.

    .venv/bin/python libs/extraction/train_router.py [--sgd PATH] [--threads 2]

The router scores clauses (`skiff_extraction.router.split_clauses`) and a request involves
every label some clause passes the threshold for, so training examples are clauses:

* the clauses of single-domain SGD requests, labelled with that domain (a bare "2 rooms
  please" from a hotel dialogue is a hotel clause);
* templated requests for what SGD lacks — travel insurance, and services no micro-SLM covers
  (trains, buses, restaurants, events).

Thresholds per label maximise F1 of the request-level decision on the training requests.
The test split holds SGD requests of other dialogues (single- and multi-domain), templated
requests from held-out templates, and those sentences appended to held-out SGD requests.
Embeddings are cached (`~/.cache/skiff/router-embeddings.npz`), so a rerun only embeds what
is new. Test metrics are stored with the weights and printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from skiff_extraction.router import RouterWeights, Vector, split_clauses
from skiff_inference.embeddings import LlamaEmbedder

LABELS = ("flights", "hotels", "cars", "insurance", "trains", "buses", "restaurants", "events")
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "libs/extraction/skiff_extraction/data/router.json"
CACHE = Path.home() / ".cache/skiff/router-embeddings.npz"
CITIES = ["Boston", "Denver", "Chicago", "Seattle", "Paris", "London", "Austin", "Miami",
          "Toronto", "San Diego", "Atlanta", "Rome", "Phoenix", "Portland", "New York"]  # fmt: skip
DATES = ["March 3rd", "next Friday", "the 14th", "tomorrow", "April 2nd", "this weekend"]
TEMPLATES: dict[str, list[str]] = {
    "insurance": [
        "Add {cov} travel insurance for {n} of us.",
        "I also want travel insurance for the trip.",
        "Can you insure the whole trip from {d} to {d2}?",
        "Please include trip insurance with {cov} coverage.",
        "We need travel cover for medical emergencies, {n} travelers.",
        "Does it come with insurance? I'd like {cov} protection for {n} people.",
        "Get me a travel insurance quote for {n} travellers from Canada.",
        "I want to buy cancellation insurance for my trip to {c}.",
        "Add basic insurance for me and my wife.",
        "Insure us please, {cov} plan.",
        "And travel insurance for my family of {n}.",
        "Could you add a premium travel protection plan for everyone?",
        "{cov} travel insurance.",
        "Travel insurance too, {cov} please.",
    ],
    "trains": [
        "Book a train from {c} to {c2} on {d}.",
        "I need {n} train tickets to {c2}.",
        "Is there an Amtrak from {c} to {c2} {d}?",
        "Get me a rail ticket to {c2}.",
        "I'd rather take the train to {c2} on {d}.",
        "Find me a high speed train to {c2}.",
        "Reserve seats on the Eurostar for {n} people.",
        "Can I get a sleeper train from {c} on {d}?",
        "I want to travel by rail from {c} to {c2}.",
        "Book the {d} train, first class, to {c2}.",
    ],
    "buses": [
        "I need a bus ticket from {c} to {c2} on {d}.",
        "Book a Greyhound to {c2} for {n} people.",
        "Is there a coach from {c} to {c2}?",
        "Find me a bus leaving {c} {d}.",
        "I'll take the bus to {c2}, {n} tickets please.",
        "Get us seats on the shuttle bus to {c2} on {d}.",
        "Book an intercity bus to {c2}.",
        "What buses go from {c} to {c2} {d}?",
        "Reserve a bus trip for {n} to {c2}.",
        "I want to go by bus, it is cheaper.",
    ],
    "restaurants": [
        "Reserve a table for {n} at an Italian restaurant in {c} on {d}.",
        "Book dinner for {n} in {c} at 7 pm.",
        "Find me a good sushi place in {c} and make a reservation.",
        "I want a restaurant booking for {d} evening.",
        "Can you get us a table at a steakhouse {d}?",
        "Book a brunch spot for {n} people in {c}.",
        "Make a dinner reservation near the hotel.",
        "We'd like to eat at a vegan restaurant in {c}, table for {n}.",
        "Reserve lunch for two at a seafood restaurant.",
        "Find a place to eat Mexican food in {c} {d}.",
    ],
    "events": [
        "Get me {n} tickets to a concert in {c} on {d}.",
        "I want to see a Broadway show {d}.",
        "Book tickets for the baseball game in {c}.",
        "Are there any theater tickets for {d} in {c}?",
        "Buy {n} tickets to the museum exhibition.",
        "Find a comedy show in {c} {d} for {n} of us.",
        "Book seats for the football match on {d}.",
        "I'd like tickets to the opera in {c}.",
        "Get us into the music festival in {c}.",
        "Reserve {n} tickets for the basketball game {d}.",
    ],
}

Example = tuple[str, frozenset[str]]


def fill(template: str, rng: random.Random) -> str:
    c, c2 = rng.sample(CITIES, 2)
    d, d2 = rng.sample(DATES, 2)
    cov = rng.choice(["basic", "standard", "premium", "full"])
    return template.format(c=c, c2=c2, d=d, d2=d2, n=rng.choice(["2", "3", "four", "two"]), cov=cov)


def in_test(key: str, share: float = 0.2) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def build(
    sgd: Path, rng: random.Random, records_used: int
) -> tuple[list[Example], list[Example], list[Example]]:
    """Training *clauses*, training *requests* (to fit thresholds the way routing decides) and
    test *requests*, each with its labels."""
    train: list[Example] = []
    train_requests: list[Example] = []
    test: list[Example] = []
    train_hosts: list[tuple[str, str]] = []
    records = [json.loads(line) for line in sgd.open()]
    rng.shuffle(records)
    test_hosts: list[tuple[str, str]] = []
    for record in records[:records_used]:
        labels = frozenset(record["domains"])
        if in_test(record["dialogue_id"]):
            test.append((record["text"], labels))
            if record["kind"] == "single":
                test_hosts.append((record["text"], record["domains"][0]))
        else:
            train_requests.append((record["text"], labels))
            if record["kind"] == "single":
                train += [(clause, labels) for clause in split_clauses(record["text"])]
                train_hosts.append((record["text"], record["domains"][0]))
    for label, templates in TEMPLATES.items():
        cut = max(2, len(templates) // 4)
        for _ in range(50):
            sentence = fill(rng.choice(templates[cut:]), rng)
            train.append((sentence, frozenset({label})))
            host, domain = rng.choice(train_hosts)
            train_requests.append((f"{host} {sentence}", frozenset({domain, label})))
        for _ in range(25):
            sentence = fill(rng.choice(templates[:cut]), rng)
            test.append((sentence, frozenset({label})))
            host, domain = rng.choice(test_hosts)
            test.append((f"{host} {sentence}", frozenset({domain, label})))
    return train, train_requests, test


class CachedEmbedder:
    """Embeddings by text hash, kept across runs."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.model: LlamaEmbedder | None = None
        self.cache: dict[str, Vector] = {}
        if CACHE.exists():
            stored = np.load(CACHE)
            self.cache = {key: stored[key] for key in stored.files}

    def embed(self, text: str) -> Vector:
        key = hashlib.sha1(text.encode()).hexdigest()
        if key not in self.cache:
            self.model = self.model or LlamaEmbedder(threads=self.threads)
            vector = self.model.embed(text)
            self.cache[key] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return self.cache[key]

    def save(self) -> None:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = dict(self.cache)
        np.savez(CACHE, **arrays)


def embed_all(embedder: CachedEmbedder, texts: Iterable[str]) -> Vector:
    vectors = []
    for index, text in enumerate(texts):
        vectors.append(embedder.embed(text))
        if index % 500 == 0:
            print(f"  embedded {index}", flush=True)
            embedder.save()
    embedder.save()
    return np.array(vectors, np.float32)


def targets(examples: list[Example]) -> Vector:
    return np.array([[label in labels for label in LABELS] for _, labels in examples], np.float32)


def fit(
    x: Vector, y: Vector, steps: int = 1500, rate: float = 0.3, l2: float = 1e-3
) -> RouterWeights:
    mean, scale = x.mean(0), (x.std(0) + 1e-6).astype(np.float32)
    z = (x - mean) / scale
    weights = np.zeros((y.shape[1], z.shape[1]), np.float32)
    bias = np.zeros(y.shape[1], np.float32)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ weights.T + bias)))
        weights -= rate * (((p - y).T @ z) / len(z) + l2 * weights)
        bias -= rate * (p - y).mean(0)
    thresholds = np.full(len(LABELS), 0.5, np.float32)
    return RouterWeights(LABELS, mean, scale, weights, bias, thresholds, {})


def request_scores(weights: RouterWeights, embedder: CachedEmbedder, texts: list[str]) -> Vector:
    """Per request, each label's highest probability over its clauses (what routing does)."""
    return np.array(
        [np.max([weights.probabilities(embedder.embed(c)) for c in split_clauses(t)], axis=0)
         for t in texts],
        np.float32,
    )  # fmt: skip


def best_thresholds(p: Vector, y: Vector) -> Vector:
    grid = np.linspace(0.1, 0.95, 35)
    best = []
    for j in range(y.shape[1]):
        hits = [float(((p[:, j] >= t) & (y[:, j] > 0)).sum()) for t in grid]
        sizes = [float((p[:, j] >= t).sum() + (y[:, j] > 0).sum()) for t in grid]
        f1 = [2 * hit / max(1.0, size) for hit, size in zip(hits, sizes, strict=True)]
        best.append(grid[int(np.argmax(f1))])
    return np.array(best, np.float32)


def metrics(p: Vector, y: Vector, thresholds: Vector) -> dict[str, object]:
    chosen, truth = p >= thresholds, y > 0
    per_label = {}
    for j, label in enumerate(LABELS):
        tp = float((chosen[:, j] & truth[:, j]).sum())
        per_label[label] = {
            "precision": round(tp / max(1.0, float(chosen[:, j].sum())), 3),
            "recall": round(tp / max(1.0, float(truth[:, j].sum())), 3),
            "support": int(truth[:, j].sum()),
        }
    exact = round(float((chosen == truth).all(1).mean()), 3)
    return {"requests": len(y), "exact_set_accuracy": exact, "per_label": per_label}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sgd", type=Path, default=REPO.parent / "shared/data/sgd-train/train.jsonl"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    train, train_requests, test = build(args.sgd, rng, args.records)
    print(f"{len(train)} training clauses, {len(train_requests)} training requests, "
          f"{len(test)} test requests")  # fmt: skip
    embedder = CachedEmbedder(args.threads)
    started = time.perf_counter()
    x_train = embed_all(embedder, (text for text, _ in train))
    weights = fit(x_train, targets(train))
    request_texts = [text for text, _ in train_requests]
    embed_all(embedder, (c for t in request_texts for c in split_clauses(t)))
    scores = request_scores(weights, embedder, request_texts)
    thresholds = best_thresholds(scores, targets(train_requests))
    test_texts = [text for text, _ in test]
    embed_all(embedder, (c for t in test_texts for c in split_clauses(t)))
    seconds = time.perf_counter() - started
    p_test, y_test = request_scores(weights, embedder, test_texts), targets(test)
    sgd = [i for i, (_, labels) in enumerate(test) if labels <= {"flights", "hotels", "cars"}]
    result = RouterWeights(
        labels=LABELS, mean=weights.mean, scale=weights.scale, weights=weights.weights,
        bias=weights.bias, thresholds=thresholds,
        metrics={"test": metrics(p_test, y_test, thresholds),
                 "train_requests": len(train_requests),
                 "test_sgd_requests_only": metrics(p_test[sgd], y_test[sgd], thresholds),
                 "training_clauses": len(train), "seed": args.seed,
                 "build_seconds": round(seconds)},
    )  # fmt: skip
    OUT.write_text(result.to_json())
    print(json.dumps(result.metrics, indent=2))


if __name__ == "__main__":
    main()
