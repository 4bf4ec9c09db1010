"""The router's arithmetic with hand-set weights: clauses, bands, both links, the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skiff_extraction.router import (
    NGRAM_BUCKETS,
    Link,
    RouterModel,
    SlmRouter,
    hashed,
    ngrams,
    route_of,
    segments,
    split_clauses,
)

LABELS = ("flights", "hotels", "trains")
WORDS = {"fly": 0, "flight": 0, "hotel": 1, "train": 2}


def model(link: Link = "sigmoid", thresholds: float = 0.5, floors: float = 0.3) -> RouterModel:
    """One n-gram weight per keyword: a clause with the word scores its label high."""
    rows = len(LABELS) + (link == "softmax")
    sparse = np.zeros((rows, NGRAM_BUCKETS), np.float32)
    for word, label in WORDS.items():
        (index,), _ = hashed([f"w {word}"])
        sparse[label, index] = 200.0
    bias = np.full(rows, -8.0, np.float32)
    if link == "softmax":
        bias[-1] = 0.0  # "none" wins a clause with no keyword
    return RouterModel(
        labels=LABELS, features=("ngrams",), link=link, dense=np.zeros((rows, 0), np.float32),
        sparse=sparse, bias=bias, thresholds=np.full(3, thresholds, np.float32),
        floors=np.full(3, floors, np.float32), card={"name": "test", "version": "1"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("Fly me to Denver. Book a hotel there, and add insurance.",
         ["Fly me to Denver.", "Book a hotel there", "add insurance."]),
        ("flights+hotel+car, Madrid to Tenerife",
         ["flights", "hotel", "car", "Madrid to Tenerife"]),
        ("Back on the 16th, 2 adults; a hotel for those nights",
         ["Back on the 16th", "2 adults", "a hotel for those nights"]),
        ("fly dxb-ist & hotel 3n plus insurance", ["fly dxb-ist", "hotel 3n", "insurance"]),
        ("Book me a hotel in Chicago.", ["Book me a hotel in Chicago."]),
    ],
)  # fmt: skip
def test_requests_split_into_their_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


def test_the_router_scores_the_whole_text_and_each_clause() -> None:
    assert segments("a hotel") == ["a hotel"]
    assert segments("a hotel and a car") == ["a hotel and a car", "a hotel", "a car"]


def test_clause_count_is_bounded() -> None:
    assert len(split_clauses(". ".join(["a flight"] * 50))) == 16


def test_ngrams_are_words_pairs_letters_and_airport_code_pairs() -> None:
    grams = ngrams("Hire SEA-ANC")
    assert {"w hire", "b hire sea", "c <hi", "c ire>", "p code pair"} <= set(grams)
    assert "p code pair" not in ngrams("sea-anc")  # codes are written in capitals


@pytest.mark.parametrize("link", ["sigmoid", "softmax"])
def test_a_request_involves_every_label_some_clause_passes(link: Link) -> None:
    route = SlmRouter(model(link)).route("I need a flight to Paris. Book a hotel; and a train.")
    assert route.domains == ("flights", "hotels")
    assert route.unsupported == ("trains",)
    assert route.decided and route.by == "slm" and route.unsure == ()


def test_nothing_recognised_is_undecided_not_refused() -> None:
    route = SlmRouter(model()).route("hello there")
    assert (route.domains, route.unsupported, route.decided) == ((), (), False)


def test_a_label_between_floor_and_threshold_is_unsure() -> None:
    route = SlmRouter(model(thresholds=1.01, floors=0.5)).route("a hotel please")
    assert route.domains == () and route.unsure == ("hotels",)
    assert not route.decided


def test_a_sure_label_with_an_unsure_one_is_still_undecided() -> None:
    ranked = model()
    ranked = RouterModel(**{**ranked.__dict__, "thresholds": np.array([0.5, 1.01, 0.5])})
    route = SlmRouter(ranked).route("fly to Rome, a hotel")
    assert route.domains == ("flights",) and route.unsure == ("hotels",)
    assert not route.decided


def test_the_model_file_round_trips(tmp_path: Path) -> None:
    original = model("softmax")
    original.save(tmp_path / "router.npz")
    again = RouterModel.load(tmp_path / "router.npz")
    assert (again.labels, again.features, again.link) == (LABELS, ("ngrams",), "softmax")
    assert np.array_equal(again.sparse, original.sparse)
    assert again.card == {"name": "test", "version": "1"}
    text = "a train and a hotel"
    assert SlmRouter(again).scores(text) == SlmRouter(original).scores(text)


def test_a_file_with_labels_no_route_knows_is_refused(tmp_path: Path) -> None:
    bad = RouterModel(**{**model().__dict__, "labels": ("flights", "hotels", "spaceships")})
    bad.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="spaceships"):
        RouterModel.load(tmp_path / "bad.npz")


def test_static_features_need_an_embedder() -> None:
    with pytest.raises(ValueError, match="embedder"):
        SlmRouter(RouterModel(**{**model().__dict__, "features": ("static", "ngrams")}))


def test_routes_list_labels_in_the_canonical_order() -> None:
    route = route_of({"trains", "insurance", "flights", "music"})
    assert route.domains == ("flights", "insurance")
    assert route.unsupported == ("trains", "music")
