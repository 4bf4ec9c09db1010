"""What an adapter is trained to write: the target draft rule and its JSON layout."""

from __future__ import annotations

import json

import pytest

from skiff_flywheel.training_targets import (
    TargetError,
    as_written,
    field_kinds,
    target_draft,
    target_json,
)
from tests.unit.flywheel_train_helpers import FLIGHTS, example


def draft_of(n: int) -> dict[str, object]:
    return target_draft(example(n, *FLIGHTS[n]), "flights")


def test_text_fields_take_the_span_not_the_canonical_value() -> None:
    draft = draft_of(0)
    assert draft["origin"] == "Philly"  # params say "Philadelphia"
    assert draft["departure_date"] == "March 3rd"  # params say "2019-03-03"


def test_numbers_booleans_and_categories_take_the_typed_params_value() -> None:
    draft = draft_of(0)
    assert draft["passengers"] == 2  # the span "Two" is not a draft value
    assert draft["seating_class"] == "economy"
    assert draft_of(2)["nonstop"] is True


def test_absent_values_are_null_and_every_field_is_present_in_schema_order() -> None:
    draft = draft_of(1)
    assert list(draft) == list(field_kinds("flights"))
    assert draft["origin"] is None and draft["return_date"] is None and draft["nonstop"] is None


def test_a_value_without_span_is_taken_as_the_text_writes_it() -> None:
    # Example 2 has no span for the places; both are in the text, "lima" with its own case.
    text, params, spans = FLIGHTS[2]
    shouted = example(2, text.replace("Lima", "LIMA"), {**params, "destination": "Lima"}, spans)
    draft = target_draft(shouted, "flights")
    assert (draft["origin"], draft["destination"]) == ("São Paulo", "LIMA")


def test_a_value_neither_spanned_nor_written_skips_the_example() -> None:
    text, params, spans = FLIGHTS[0]
    no_date_span = {k: v for k, v in spans.items() if k != "departure_date"}
    with pytest.raises(TargetError) as error:
        target_draft(example(0, text, params, no_date_span), "flights")
    assert error.value.reason == "unwritten_value"
    assert "departure_date" in str(error.value)


def test_a_draft_the_model_rejects_skips_the_example() -> None:
    text, params, spans = FLIGHTS[0]
    too_long = {**spans, "origin": "x" * 121}
    with pytest.raises(TargetError) as error:
        target_draft(example(0, text, params, too_long), "flights")
    assert error.value.reason == "invalid_draft"


def test_the_json_is_laid_out_as_the_fast_decoder_writes_it() -> None:
    draft = draft_of(2)
    text = target_json(draft)
    assert text.startswith('{"origin": "São Paulo", "destination": "Lima", "departure_date": ')
    assert ", " in text and ": " in text and "\n" not in text and "\\u" not in text
    assert json.loads(text) == draft


def test_field_kinds_follow_the_draft_types() -> None:
    assert field_kinds("hotels")["review_rating"] == "number"
    assert field_kinds("hotels")["wifi"] == "boolean"
    assert field_kinds("cars")["car_type"] == "category"
    assert field_kinds("cars")["pickup_time"] == "text"


def test_as_written_keeps_the_texts_spelling() -> None:
    assert as_written("new york", "Fly me to New York!") == "New York"
    assert as_written("Boston", "Fly me to Denver") is None
    assert as_written("", "anything") is None
