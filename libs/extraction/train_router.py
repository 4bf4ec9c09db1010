"""Train the planner's embedding router and write `skiff_extraction/data/router.json`.

    .venv/bin/python libs/extraction/train_router.py [--sgd PATH] [--threads 2]

Data: SGD development requests (labels = their domains), plus templated requests for what
SGD lacks — travel insurance, and services no micro-SLM covers (trains, buses, restaurants,
events) — alone and appended to SGD requests, plus concatenations of requests from
different domains (multi-domain trips). SGD records are split by dialogue and templates by
index, so nothing in the test split was seen in training. Thresholds per label maximise F1
on the training split. Test metrics are stored with the weights and printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np

from skiff_extraction.router import LlamaEmbedder, RouterWeights, Vector

LABELS = ("flights", "hotels", "cars", "insurance", "trains", "buses", "restaurants", "events")
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "libs/extraction/skiff_extraction/data/router.json"
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


def fill(template: str, rng: random.Random) -> str:
    c, c2 = rng.sample(CITIES, 2)
    d, d2 = rng.sample(DATES, 2)
    cov = rng.choice(["basic", "standard", "premium", "full"])
    return template.format(c=c, c2=c2, d=d, d2=d2, n=rng.choice(["2", "3", "four", "two"]), cov=cov)


def in_test(key: str, share: float = 0.2) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def build(
    sgd: Path, rng: random.Random
) -> tuple[list[tuple[str, set[str]]], list[tuple[str, set[str]]]]:
    train: list[tuple[str, set[str]]] = []
    test: list[tuple[str, set[str]]] = []
    records = [json.loads(line) for line in sgd.open()]
    rng.shuffle(records)
    singles: dict[bool, dict[str, list[str]]] = {True: {}, False: {}}
    for record in records[:2400]:
        split = in_test(record["dialogue_id"])
        example = (record["text"], set(record["domains"]))
        (test if split else train).append(example)
        if record["kind"] == "single":
            singles[split].setdefault(record["domains"][0], []).append(record["text"])
    for label, templates in TEMPLATES.items():
        cut = max(2, len(templates) // 4)
        for split, chosen in ((False, templates[cut:]), (True, templates[:cut])):
            target = test if split else train
            for _ in range(60 if not split else 25):
                sentence = fill(rng.choice(chosen), rng)
                target.append((sentence, {label}))
                host_domain = rng.choice(["flights", "hotels", "cars"])
                host = rng.choice(singles[split][host_domain])
                target.append((f"{host} {sentence}", {host_domain, label}))
    for split, target, count in ((False, train, 300), (True, test, 80)):
        for _ in range(count):
            domains = rng.sample(["flights", "hotels", "cars"], rng.choice([2, 3]))
            parts = [rng.choice(singles[split][d]) for d in domains]
            labels = set(domains)
            if rng.random() < 0.4:
                parts.append(fill(rng.choice(TEMPLATES["insurance"]), rng))
                labels.add("insurance")
            target.append((" ".join(parts), labels))
    return train, test


def embed_all(
    embedder: LlamaEmbedder, examples: list[tuple[str, set[str]]]
) -> tuple[Vector, Vector]:
    vectors = []
    for index, (text, _) in enumerate(examples):
        vector = embedder.embed(text)
        vectors.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
        if index % 200 == 0:
            print(f"  embedded {index}/{len(examples)}", flush=True)
    targets = np.array(
        [[label in labels for label in LABELS] for _, labels in examples], np.float32
    )
    return np.array(vectors, np.float32), targets


def fit(
    x: Vector, y: Vector, steps: int = 1500, rate: float = 0.3, l2: float = 1e-3
) -> tuple[Vector, Vector, Vector, Vector]:
    mean, scale = x.mean(0), (x.std(0) + 1e-6).astype(np.float32)
    z = (x - mean) / scale
    weights = np.zeros((y.shape[1], z.shape[1]), np.float32)
    bias = np.zeros(y.shape[1], np.float32)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ weights.T + bias)))
        weights -= rate * (((p - y).T @ z) / len(z) + l2 * weights)
        bias -= rate * (p - y).mean(0)
    return mean, scale, weights, bias


def best_thresholds(p: Vector, y: Vector) -> Vector:
    grid = np.linspace(0.1, 0.9, 33)
    best = []
    for j in range(y.shape[1]):
        f1s = []
        for t in grid:
            chosen = p[:, j] >= t
            tp = float((chosen & (y[:, j] > 0)).sum())
            f1s.append(2 * tp / max(1.0, float(chosen.sum() + (y[:, j] > 0).sum())))
        best.append(grid[int(np.argmax(f1s))])
    return np.array(best, np.float32)


def metrics(p: Vector, y: Vector, thresholds: Vector) -> dict[str, object]:
    chosen = p >= thresholds
    truth = y > 0
    per_label = {}
    for j, label in enumerate(LABELS):
        tp = float((chosen[:, j] & truth[:, j]).sum())
        per_label[label] = {
            "precision": round(tp / max(1.0, float(chosen[:, j].sum())), 3),
            "recall": round(tp / max(1.0, float(truth[:, j].sum())), 3),
            "support": int(truth[:, j].sum()),
        }
    exact = round(float((chosen == truth).all(1).mean()), 3)
    return {"examples": len(y), "exact_set_accuracy": exact, "per_label": per_label}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sgd", type=Path, default=REPO.parent / "shared/data/sgd-train/train.jsonl"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    train, test = build(args.sgd, rng)
    print(f"{len(train)} training and {len(test)} test examples")
    embedder = LlamaEmbedder(threads=args.threads)
    started = time.perf_counter()
    x_train, y_train = embed_all(embedder, train)
    x_test, y_test = embed_all(embedder, test)
    per_text_ms = 1000 * (time.perf_counter() - started) / (len(train) + len(test))
    mean, scale, weights, bias = fit(x_train, y_train)

    def probability(x: Vector) -> Vector:
        logits = ((x - mean) / scale) @ weights.T + bias
        result: Vector = (1 / (1 + np.exp(-logits))).astype(np.float32)
        return result

    thresholds = best_thresholds(probability(x_train), y_train)
    test_metrics = metrics(probability(x_test), y_test, thresholds)
    sgd_only = [i for i, (_, labels) in enumerate(test) if labels <= {"flights", "hotels", "cars"}]
    sgd_metrics = metrics(probability(x_test[sgd_only]), y_test[sgd_only], thresholds)
    result = RouterWeights(
        labels=LABELS, mean=mean, scale=scale, weights=weights, bias=bias, thresholds=thresholds,
        metrics={"test": test_metrics, "test_flights_hotels_cars_only": sgd_metrics,
                 "train_examples": len(train), "embed_ms_per_text": round(per_text_ms, 1),
                 "seed": args.seed},
    )  # fmt: skip
    OUT.write_text(result.to_json())
    print(json.dumps(result.metrics, indent=2))


if __name__ == "__main__":
    main()
