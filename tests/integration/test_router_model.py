"""The shipped router on real data: held-out requests routed through the real model (static
embeddings from the `wordllama` wheel, the committed weights), routes asserted.

The requests below were written for this test and appear in no training or calibration
set; the hand-written held-out set (`libs/models/devsets/router.jsonl`) is measured against
floors just under the figures committed in `bench/results/router.md`, so a router that got
worse on other writers' phrasings fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skiff_cli.main import app
from skiff_extraction.router import load_router, router_card
from skiff_flywheel.router_data import written
from skiff_flywheel.router_training import measure

HELD_OUT = Path(__file__).resolve().parents[2] / "libs/models/devsets/router.jsonl"
# Measured on the shipped router (bench/results/router.md): 0.824, 0.894, 0.027, 0.596.
FLOORS = {"single_recall": 0.80, "multi_exact": 0.87, "non_travel_given_travel": 0.04,
          "unsupported_named": 0.55}  # fmt: skip

ROUTES = [
    ("Could you find me a flight from Lisbon to Oslo on the 3rd of May?", ("flights",), ()),
    ("I'd like a hotel room in Kyoto for four nights from 10 October.", ("hotels",), ()),
    ("Rent me a car at Denver airport from Friday to Monday.", ("cars",), ()),
    ("Please add travel insurance for the three of us.", ("insurance",), ()),
    ("Fly me from Madrid to Rome on 2 June and book a hotel near the Colosseum for 3 nights.",
     ("flights", "hotels"), ()),
    ("Fly me from Boston to Denver on 12 March, back on the 16th, 2 adults. Book a hotel in "
     "Denver for those nights, rent a compact car at the Denver airport on the 12th, and add "
     "basic travel insurance for both of us.", ("flights", "hotels", "cars", "insurance"), ()),
    ("Book a train from Paris to Lyon on Friday morning.", (), ("trains",)),
    ("Reserve a table for two at a sushi restaurant tonight.", (), ("restaurants",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def router():  # type: ignore[no-untyped-def]
    return load_router()


@pytest.mark.parametrize(("text", "domains", "unsupported"), ROUTES)
def test_the_shipped_router_routes_new_requests(
    router, text: str, domains: tuple[str, ...], unsupported: tuple[str, ...]
) -> None:  # type: ignore[no-untyped-def]
    route = router.route(text)
    assert (route.domains, route.unsupported) == (domains, unsupported), route.scores
    assert route.decided, route.unsure


def test_gibberish_is_placed_nowhere_and_left_to_the_llm_tier(router) -> None:  # type: ignore[no-untyped-def]
    route = router.route("qwv zzkp lorum blatt")
    assert route.domains == () and not route.decided


def test_on_the_hand_written_held_out_set_it_stays_at_its_measured_figures(router) -> None:  # type: ignore[no-untyped-def]
    metrics, _ = measure(router, list(written(HELD_OUT, "written")))
    assert metrics["requests"] == 231
    assert metrics["single_recall"] >= FLOORS["single_recall"], metrics
    assert metrics["multi_exact"] >= FLOORS["multi_exact"], metrics
    assert metrics["non_travel_given_travel"] <= FLOORS["non_travel_given_travel"], metrics
    assert metrics["unsupported_named"] >= FLOORS["unsupported_named"], metrics


def test_the_router_s_card_carries_its_file_and_figures() -> None:
    card = router_card()
    assert card.task == "router.route" and card.adapter and card.adapter_sha256
    assert {e.dataset_id for e in card.evaluations} >= {"router-held-out:written"}


def test_skiff_route_writes_a_line_per_request_and_a_typed_error_per_bad_line(
    tmp_path: Path,
) -> None:
    requests = tmp_path / "in.jsonl"
    requests.write_text(
        json.dumps({"id": "a", "text": "Rent me a car at Denver airport from Friday to Monday."})
        + "\n{not json\n" + json.dumps({"id": "c", "text": 7}) + "\n\n"
        + json.dumps({"id": "d", "text": "Reserve a table for two at a sushi restaurant tonight."})
        + "\n"
    )  # fmt: skip
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["route", "--input", str(requests), "--output", str(output)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a", "2", "c", "d"]
    assert (lines[0]["domains"], lines[0]["unsupported"], lines[0]["by"]) == (["cars"], [], "slm")
    assert lines[0]["scores"]["cars"] > 0.5 and lines[0]["latency_ms"] >= 0
    assert lines[1]["error"].startswith("not JSON") and lines[2]["error"] == "no `text` string"
    assert (lines[3]["domains"], lines[3]["unsupported"]) == ([], ["restaurants"])
