"""Pricing, calibration math, the context sentence, clarifying
questions, and the example bank's build rules: pure logic, no model, constructed inputs."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from skiff_contracts.domains import FlightsRequest, HotelsRequest
from skiff_contracts.problems import Problem
from skiff_extraction.calibration import (
    DEFAULT_THRESHOLDS,
    Outcome,
    choose,
    sweep,
)
from skiff_extraction.context import context_sentence, with_context
from skiff_extraction.examples import ExampleBank
from skiff_extraction.pricing import DEFAULT_PRICES, ModelPrice, all_llm_cost, price
from skiff_extraction.questions import question_for

REPO = Path(__file__).resolve().parents[2]

# --- pricing -----------------------------------------------------------------------------------


def test_a_call_is_priced_per_million_tokens_in_and_out() -> None:
    table = {"m": ModelPrice(input_usd_per_mtok=0.40, output_usd_per_mtok=0.80)}
    assert price("m", 1_000_000, 0, table) == pytest.approx(0.40)
    assert price("m", 500, 250, table) == pytest.approx((500 * 0.40 + 250 * 0.80) / 1e6)
    assert price("not-in-the-table", 10_000, 10_000, table) == 0.0


def test_the_defaults_price_the_slm_as_a_hosted_8b_and_the_llm_tier_as_a_70b() -> None:
    slm = price("smollm2-135m-instruct", 500, 80)
    llm = price("llm-standin", 500, 80)
    assert slm == pytest.approx((500 * 0.02 + 80 * 0.03) / 1e6)
    assert llm == pytest.approx((500 + 80) * 0.40 / 1e6)
    assert all_llm_cost(500, 80) == pytest.approx(llm)
    assert llm / slm > 10  # the 13–20× gap of the hosted price lists
    assert set(DEFAULT_PRICES) >= {"smollm2-135m-instruct", "llm-standin"}


# --- calibration -------------------------------------------------------------------------------

GOLD = {"location": {"value": "Denver", "canonical": "Denver"}, "rooms": {"value": "2"}}
RIGHT = {"location": "Denver", "rooms": 2}
HALF = {"location": "Denver", "rooms": 3}


def test_the_sweep_reports_kept_share_and_kept_accuracy_per_threshold() -> None:
    outcomes = [
        Outcome(RIGHT, 0.9, GOLD),
        Outcome(RIGHT, 0.7, GOLD),
        Outcome(HALF, 0.4, GOLD),
        Outcome(HALF, 0.2, GOLD),
        Outcome(None, None, GOLD),  # escalated: never kept
    ]
    rows = {row.threshold: row for row in sweep("hotels", outcomes, (0.0, 0.3, 0.5, 0.95))}
    assert rows[0.0].kept == 4 and rows[0.0].kept_share == pytest.approx(0.8)
    assert rows[0.0].kept_accuracy == pytest.approx(6 / 8)
    assert rows[0.3].kept == 3 and rows[0.3].kept_accuracy == pytest.approx(5 / 6)
    assert rows[0.5].kept == 2 and rows[0.5].kept_accuracy == pytest.approx(1.0)
    assert rows[0.95].kept == 0 and rows[0.95].kept_accuracy is None
    chosen = choose(list(rows.values()), 0.8)
    assert chosen is not None and chosen.threshold == 0.3  # the lowest that reaches the target
    assert choose(list(rows.values()), 1.0) is rows[0.5]


def test_no_threshold_is_chosen_when_none_reaches_the_target() -> None:
    outcomes = [Outcome(HALF, 0.9, GOLD), Outcome(HALF, 0.5, GOLD)]
    assert choose(sweep("hotels", outcomes), 0.9) is None
    assert DEFAULT_THRESHOLDS[0] == 0.0 and DEFAULT_THRESHOLDS[-1] == 1.0


def test_a_missing_confidence_is_kept_only_at_threshold_zero() -> None:
    unscored = Outcome(RIGHT, None, GOLD)
    assert unscored.kept_at(0.0) and not unscored.kept_at(0.05)


# --- context and questions ---------------------------------------------------------------------


def test_the_context_sentence_says_what_the_other_steps_settled() -> None:
    flight = FlightsRequest(
        origin="Boston", destination="Denver", departure_date=date(2026, 3, 12),
        return_date=date(2026, 3, 16), passengers=2,
    )  # fmt: skip
    hotel = HotelsRequest(location="Denver", check_in_date=date(2026, 3, 12), nights=4)
    assert context_sentence({"flights": flight}, "hotels") == (
        "The trip's flight goes from Boston to Denver, leaving 2026-03-12, returning "
        "2026-03-16, for 2 passengers."
    )
    assert context_sentence({"flights": flight, "hotels": hotel}, "flights") == (
        "The trip's hotel is in Denver, checking in 2026-03-12, for 4 nights."
    )
    assert context_sentence({}, "cars") == ""
    assert with_context("a hotel there", "", 100) == "a hotel there"
    assert len(with_context("x" * 90, "The trip's flight goes to Denver.", 100)) == 100


def test_only_problems_the_user_can_settle_become_a_question() -> None:
    ambiguous = Problem(code="ambiguous_city", message="…", field="destination")
    rule = Problem(code="return_before_departure", message="…", field="return_date")
    assert question_for([ambiguous, rule], {"destination": "Springfield"}) is None
    assert question_for([rule], {}) is None
    country = Problem(code="unknown_country", message="…", field="residence_country")
    assert question_for([country], {"residence_country": "Narnia"}) == (
        "I don't know a country called Narnia — which country do you live in?"
    )
    missing = Problem(code="missing_value", message="…", field="departure_date")
    assert question_for([missing], None) == "On what date do you want to leave?"


# --- the example bank --------------------------------------------------------------------------


def test_the_committed_bank_holds_no_evaluation_or_development_dialogue() -> None:
    sys.path.insert(0, str(REPO / "libs" / "extraction"))
    try:
        import build_examples
    finally:
        sys.path.pop(0)
    data = build_examples.DEFAULT_DATA
    if not data.exists():
        pytest.skip(f"no development data at {data}")
    records = list(build_examples.read(data))
    held = build_examples.held_out_dialogues(records)
    dialogue_of = {r["id"]: r["dialogue_id"] for r in records}
    bank = ExampleBank.load()
    for domain in ("flights", "hotels", "cars"):
        assert bank.size(domain) >= 200
        found = bank.retrieve(domain, "a flight from Boston", k=400)
        assert not {dialogue_of.get(e.example_id) for e in found} & held
    assert bank.size("insurance") >= 10
