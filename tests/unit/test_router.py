"""The router's logic with a fake embedder: clauses, union of clause labels, weights on disk."""

from __future__ import annotations

import numpy as np
import pytest

from skiff_extraction.router import EmbeddingRouter, RouterWeights, Vector, split_clauses

LABELS = ("flights", "hotels", "trains")
KEYWORDS = {"fly": 0, "flight": 0, "hotel": 1, "train": 2}


class KeywordEmbedder:
    """One dimension per label, lit by a keyword: enough to test the routing arithmetic."""

    def embed(self, text: str) -> Vector:
        vector = np.full(len(LABELS), 0.01, np.float32)
        for word, index in KEYWORDS.items():
            if word in text.lower():
                vector[index] = 1.0
        return vector


def weights() -> RouterWeights:
    eye = np.eye(len(LABELS), dtype=np.float32)
    return RouterWeights(
        labels=LABELS, mean=np.zeros(3, np.float32), scale=np.ones(3, np.float32),
        weights=eye * 12, bias=np.full(3, -9, np.float32),
        thresholds=np.full(3, 0.5, np.float32), metrics={},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("Fly me to Denver. Book a hotel there, and add insurance.",
         ["Fly me to Denver.", "Book a hotel there", "add insurance."]),
        ("I want to fly to London and stay at a hotel there",
         ["I want to fly to London", "stay at a hotel there"]),
        ("Back on the 16th, 2 adults; a hotel for those nights",
         ["Back on the 16th, 2 adults", "a hotel for those nights"]),
        ("Book me a hotel in Chicago.", ["Book me a hotel in Chicago."]),
    ],
)  # fmt: skip
def test_requests_split_into_their_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


def test_clause_count_is_bounded() -> None:
    assert len(split_clauses(". ".join(["a flight"] * 50))) == 12


def test_a_request_involves_every_label_some_clause_passes() -> None:
    router = EmbeddingRouter(KeywordEmbedder(), weights())
    route = router.route("I need a flight to Paris. Book a hotel near the station; and a train.")
    assert route.domains == ("flights", "hotels")
    assert route.unsupported == ("trains",)


def test_nothing_recognised_routes_nowhere() -> None:
    assert EmbeddingRouter(KeywordEmbedder(), weights()).route("hello there").domains == ()


def test_weights_round_trip_through_json() -> None:
    original = weights()
    again = RouterWeights.from_json(original.to_json())
    assert again.labels == original.labels
    assert np.allclose(again.weights, original.weights)


def test_the_committed_weights_load_with_their_measured_metrics() -> None:
    committed = RouterWeights.load()
    assert set(committed.labels) >= {"flights", "hotels", "cars", "insurance"}
    assert committed.metrics["test_sgd_requests_only"]["exact_set_accuracy"] > 0.9
