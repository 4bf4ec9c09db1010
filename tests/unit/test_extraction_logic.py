"""Extraction logic without a model: evidence, place roles, value confidence, scoring, schema."""

from __future__ import annotations

import json
import math

import pytest

from skiff_contracts.domains import CarsDraft, FlightsDraft, HotelsDraft
from skiff_extraction.confidence import value_confidence, value_spans
from skiff_extraction.evidence import reassigned_roles, unsupported_fields
from skiff_extraction.schema import decoding_schema
from skiff_extraction.scoring import SlotScore, matches
from skiff_inference.engine import TokenLogprob


def test_values_copied_from_worked_examples_are_unsupported() -> None:
    text = "I am leaving to Sydney, NSW on 13th of this month from LAX."
    draft = FlightsDraft(
        origin="Los Angeles", destination="Sydney", departure_date="13th of this month",
        passengers=2, seating_class="business", airline="Delta", nonstop=True,
    )  # fmt: skip
    assert unsupported_fields(draft, text) == ("passengers", "seating_class", "airline", "nonstop")


@pytest.mark.parametrize(
    ("draft", "text"),
    [
        (FlightsDraft(origin="Philly", passengers=2), "two tickets from philly please"),
        (FlightsDraft(destination="New York"), "I'm flying into NYC"),  # an alias of the city
        (FlightsDraft(destination="San Francisco"), "going to SFO on the 3rd"),  # its airport
        (FlightsDraft(departure_date="the 12th of March"), "leaving the 12th"),
        (FlightsDraft(seating_class="premium_economy"), "premium economy seats"),
        (HotelsDraft(pets_allowed=True, wifi=True), "somewhere my dog can stay, with wi-fi"),
        (HotelsDraft(review_rating=4.5, rooms=1), "one room, rated 4.5 at least"),
        (CarsDraft(car_type="full_size", pickup_time="3:30 pm"), "a full size car at 3:30 pm"),
    ],
)
def test_values_the_text_supports_stand(draft: object, text: str) -> None:
    assert unsupported_fields(draft, text) == ()  # type: ignore[arg-type]


def test_place_roles_follow_the_texts_cues() -> None:
    swapped = FlightsDraft(origin="Seattle", destination="Vancouver")
    fixed = reassigned_roles(swapped, "I want to visit Seattle, WA from Vancouver")
    assert (fixed.origin, fixed.destination) == ("Vancouver", "Seattle")
    misplaced = reassigned_roles(FlightsDraft(origin="Paris"), "I need a flight to Paris.")
    assert (misplaced.origin, misplaced.destination) == (None, "Paris")
    unclear = FlightsDraft(origin="Boston", destination="Denver")
    assert reassigned_roles(unclear, "Boston and Denver, sometime") == unclear


def test_value_spans_cover_values_not_keys_or_quotes() -> None:
    raw = '{"a": "x, y", "b": null, "c": 3, "d": {"e": 1}}'
    spans = {k: raw[s:e] for k, (s, e) in value_spans(raw).items()}
    assert spans == {"a": "x, y", "b": "null", "c": "3", "d": '{"e": 1}'}


def test_confidence_uses_only_value_tokens() -> None:
    pieces = [('{"', -5.0), ("a", -5.0), ('": "', -5.0), ("Bos", -0.1), ("ton", -0.3),
              ('", "', -5.0), ("b", -5.0), ('": ', -5.0), ("null", -2.0), ("}", -5.0)]  # fmt: skip
    tokens = [TokenLogprob(text, lp) for text, lp in pieces]
    raw = "".join(text for text, _ in pieces)
    confidence = value_confidence(raw, tokens)
    assert confidence is not None
    assert confidence.fields["b"] == pytest.approx(math.exp(-2.0))
    assert confidence.fields["a"] > confidence.fields["b"] == confidence.overall


def test_confidence_is_none_when_tokens_do_not_spell_the_text() -> None:
    assert value_confidence('{"a": 1}', [TokenLogprob("{", -1.0)]) is None


def test_decoding_schema_requires_every_field_and_drops_length_bounds() -> None:
    schema = decoding_schema(FlightsDraft)
    assert schema["required"] == list(FlightsDraft.model_fields)
    assert "maxLength" not in json.dumps(schema)


def test_scoring_normalises_gold_forms() -> None:
    assert matches("origin", "Philadelphia", {"canonical": "Philadelphia", "value": "Philly"})
    assert matches("seating_class", "premium_economy", {"canonical": "Premium Economy"})
    assert matches("car_type", "full_size", {"canonical": "Full-size"})
    assert matches("pickup_time", "15:30:00", {"canonical": "15:30"})
    assert matches("wifi", True, {"canonical": "True"})
    assert matches("airline", "Delta", {"canonical": "Delta Airlines", "variants": ["Delta"]})
    assert matches("seating_class", None, {"canonical": "dontcare"})
    assert not matches("passengers", 2, {"canonical": "3"})


def test_slot_score_counts_invented_values() -> None:
    score = SlotScore()
    gold = {"origin": {"canonical": "Boston"}, "passengers": {"canonical": "2"}}
    score.add("flights", {"origin": "Boston", "passengers": 3, "airline": "Delta"}, gold)
    assert (score.correct, score.gold_slots, score.invented, score.exact_records) == (1, 2, 1, 0)
