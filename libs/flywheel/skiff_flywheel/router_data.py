"""The router's data: labelled texts to train on, and labelled requests to measure on.

Sources, each split by dialogue with the extraction datasets' own rule (`curate.split_of`
on `sgd:<dialogue>`, so a dialogue is held out for the router exactly when it is held out
for the adapters); the held-out dialogues are halved again into *dev* (thresholds and the
uncertainty band are calibrated there) and *test* (only measured):

* `../shared/data/sgd-intents`: 29k real intent statements of 16 service families, travel
  and not (`FAMILY_LABELS`);
* `../shared/data/sgd-train`: real multi-turn flight, hotel and car requests, trips included;
* the seeded request generator (`skiff_flywheel.synthetic`): one example per clause, so
  insurance, which SGD lacks, is learned from its own clause;
* `router_phrasings`: what the real data lacks (trains, chit-chat, gibberish, hostile text,
  clauses that ask for nothing);
* the call log: the routes the LLM tier decided when the router was unsure
  (`call_log_routes`), so each retrained router takes over what the LLM did.

Held out from every training step: the hand-written sets `libs/models/devsets/router.jsonl`
and `libs/models/devsets/insurance.jsonl` (measured only), and `router-dev.jsonl` (written
by another hand, calibration only: SGD's phrasings alone would set thresholds for SGD).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from skiff_contracts.domains import DOMAINS, ROUTE_LABELS, Domain
from skiff_contracts.registry import ROUTER_TASK
from skiff_flywheel.curate import DEFAULT_EVAL_SHARE, split_of
from skiff_flywheel.router_phrasings import written_examples
from skiff_flywheel.synthetic import request
from skiff_flywheel.synthetic_values import cities

FAMILY_LABELS = {
    "Flights": "flights", "Hotels": "hotels", "RentalCars": "cars", "Buses": "buses",
    "Events": "events", "Restaurants": "restaurants", "Homes": "homes",
    "RideSharing": "ride_sharing", "Travel": "attractions", "Weather": "weather",
    "Banks": "banks", "Calendar": "calendar", "Media": "media", "Movies": "movies",
    "Music": "music", "Services": "services",
}  # fmt: skip
RouterSplit = Literal["train", "dev", "test"]
TRIP_SHAPES: tuple[tuple[Domain, ...], ...] = (
    ("flights", "hotels"), ("hotels", "cars"), ("flights", "cars"), ("flights", "insurance"),
    ("flights", "hotels", "cars"), ("flights", "hotels", "insurance"),
    ("flights", "hotels", "cars", "insurance"), ("hotels", "insurance"),
)  # fmt: skip


@dataclass(frozen=True)
class Labelled:
    """A text and every label it asks for (none: it asks for nothing)."""

    text: str
    labels: frozenset[str]
    source: str
    group: str  # the unit a split keeps together (a dialogue)
    kind: str = "single"  # single, multi, out_of_scope, mixed, chitchat, gibberish, hostile

    @property
    def split(self) -> RouterSplit:
        if self.source in ("written", "insurance-devset"):
            return "test"
        if self.source == "written-dev":
            return "dev"
        if self.source in ("generated", "phrasings", "call-log"):
            return "train"
        if split_of(self.group, DEFAULT_EVAL_SHARE) == "train":
            return "train"
        return "dev" if split_of(f"router:{self.group}", 0.5) == "eval" else "test"


def kind_of(labels: frozenset[str]) -> str:
    travel = labels & set(DOMAINS)
    if not travel:
        return "out_of_scope" if labels else "chitchat"
    if labels - travel:
        return "mixed"
    return "multi" if len(travel) > 1 else "single"


def sgd_intents(path: Path) -> Iterator[Labelled]:
    """One example per user turn (a turn said to several services has all their labels)."""
    turns: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for line in (path / "train.jsonl").open():
        row = json.loads(line)
        _, _, dialogue, turn, _ = row["id"].split("-", 4)
        text, labels = turns.setdefault((dialogue, turn), (row["text"], set()))
        labels.add(FAMILY_LABELS[row["family"]])
    for (dialogue, _), (text, labels) in turns.items():
        frozen = frozenset(labels)
        yield Labelled(text, frozen, "sgd-intents", f"sgd:{dialogue}", kind_of(frozen))


def sgd_requests(path: Path) -> Iterator[Labelled]:
    """sgd-train's whole requests, single-domain and trips."""
    for line in (path / "train.jsonl").open():
        row = json.loads(line)
        labels = frozenset(row["domains"])
        yield Labelled(row["text"], labels, "sgd-train", f"sgd:{row['dialogue_id']}",
                       kind_of(labels))  # fmt: skip


def generated(count: int, seed: int) -> Iterator[Labelled]:
    """`count` generated requests, each clause an example of its own domain."""
    rng = random.Random(f"skiff-router:{seed}")
    shapes = [(d,) for d in DOMAINS] * 2 + list(TRIP_SHAPES)
    for index in range(count):
        _, clauses = request(rng, list(rng.choice(shapes)))
        for clause in clauses:
            yield Labelled(clause.text, frozenset({clause.domain}), "generated", f"gen:{index}")


def phrasings(seed: int) -> Iterator[Labelled]:
    rng = random.Random(f"skiff-router-phrasings:{seed}")
    names = tuple(sorted({city.name for city in cities()}))
    codes = tuple(sorted({code for city in cities() for code in city.airports}))
    # Twelve fillings of each template (four before router 2.1.0): the same dev split scored
    # multi-domain exact 0.935 -> 0.967 and single recall 0.907 -> 0.912 (bench/results/router.md).
    filled = written_examples(rng, names, codes, per_template=12)
    for index, (text, labels) in enumerate(filled):
        yield Labelled(text, labels, "phrasings", f"phrase:{index}", kind_of(labels))


def written(path: Path, source: str) -> Iterator[Labelled]:
    """A hand-written set: lines with `id`, `text`, `domains`, and `unsupported` and `kind`
    where it has them (the insurance set has neither)."""
    for line in path.open():
        if not line.strip():
            continue
        row = json.loads(line)
        labels = frozenset(row["domains"]) | frozenset(row.get("unsupported", ()))
        yield Labelled(row["text"], labels, source, f"{source}:{row['id']}",
                       row.get("kind") or kind_of(labels))  # fmt: skip


def call_log_routes(records: Iterable[Mapping[str, Any]]) -> Iterator[Labelled]:
    """The conversion loop for the router: every route the LLM tier decided (a valid
    `router.route` record of tier `llm`) is a labelled request for the next router."""
    for record in records:
        if record.get("kind", "call_record") != "call_record":
            continue
        if record.get("task") != ROUTER_TASK or record.get("tier") != "llm":
            continue
        labels = (record.get("output") or {}).get("labels")
        text = record.get("input_text")
        if not record.get("valid") or not isinstance(labels, list) or not text:
            continue
        known = frozenset(str(label) for label in labels) & set(ROUTE_LABELS)
        yield Labelled(text, known, "call-log", f"calls:{record.get('trip_id')}", kind_of(known))


@dataclass(frozen=True)
class RouterSources:
    sgd_intents: Path
    sgd_train: Path
    written: Path
    written_dev: Path
    insurance: Path
    generated: int = 4000
    seed: int = 13
    call_log: tuple[Labelled, ...] = ()  # routes the LLM tier decided (`call_log_routes`)

    def everything(self) -> list[Labelled]:
        return [
            *self.call_log,
            *sgd_intents(self.sgd_intents), *sgd_requests(self.sgd_train),
            *generated(self.generated, self.seed), *phrasings(self.seed),
            *written(self.written, "written"), *written(self.written_dev, "written-dev"),
            *written(self.insurance, "insurance-devset"),
        ]  # fmt: skip


def held_out_sets(examples: list[Labelled]) -> dict[str, list[Labelled]]:
    """The sets figures are reported on: SGD's test dialogues and each hand-written set."""
    return {
        "sgd-test": [e for e in examples if e.split == "test" and e.source.startswith("sgd")],
        "written": [e for e in examples if e.source == "written"],
        "insurance-devset": [e for e in examples if e.source == "insurance-devset"],
    }
