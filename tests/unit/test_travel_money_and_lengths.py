"""Amounts of money as written, lengths of time as a second date, demonyms as countries, and a
car picked up at an airport."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from skiff_contracts.domains import CarsDraft, CarsRequest, InsuranceDraft, InsuranceRequest
from skiff_travel.dates import resolve_duration
from skiff_travel.grounding import ground_country
from skiff_travel.money import Money, MoneyParseError, parse_money
from skiff_travel.rules import Rejection, ground_draft

REF = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("text", "money"),
    [
        ("$6,400", Money(6400.0, "USD")),
        ("1.200 €", Money(1200.0, "EUR")),
        ("€1,200", Money(1200.0, "EUR")),
        ("EUR 5.500", Money(5500.0, "EUR")),
        ("4.750,00 €", Money(4750.0, "EUR")),
        ("USD 4,250.50", Money(4250.5, "USD")),
        ("CHF 4'500", Money(4500.0, "CHF")),
        ("12 000 €", Money(12000.0, "EUR")),
        ("2,500 dollars", Money(2500.0, "USD")),
        ("450,000 yen", Money(450000.0, "JPY")),
        ("£850", Money(850.0, "GBP")),
        ("9k USD", Money(9000.0, "USD")),
        ("about $3,000", Money(3000.0, "USD")),
        ("1950", Money(1950.0, None)),
        ("99.5", Money(99.5, None)),
    ],
)
def test_amounts_read_as_their_writer_wrote_them(text: str, money: Money) -> None:
    assert parse_money(text) == money


@pytest.mark.parametrize("text", ["", "a lot", "5 dollars 3 euros", "$ 1,2,3", "€5 £6", "12,34,5"])
def test_what_is_not_one_amount_is_a_typed_error(text: str) -> None:
    with pytest.raises(MoneyParseError):
        parse_money(text)


@pytest.mark.parametrize(
    ("text", "days"),
    [("10 days", 10), ("for two weeks", 14), ("a fortnight", 14), ("3 nights", 3),
     ("a week", 7), ("ten-day trip", 10), ("2-week trip", 14), ("one day", 1)],
)  # fmt: skip
def test_lengths_of_time(text: str, days: int) -> None:
    assert resolve_duration(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["March 3rd", "in 3 days", "tomorrow", "days", "week"])
def test_dates_are_not_lengths(text: str) -> None:
    assert resolve_duration(text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [("Canadian", "CA"), ("Dutch", "NL"), ("British", "GB"), ("Swiss", "CH"), ("DE", "DE"),
     ("the Netherlands", "NL"), ("New Zealander", "NZ")],
)  # fmt: skip
def test_a_residence_by_name_code_or_demonym(text: str, code: str) -> None:
    assert ground_country(text) == code


def test_an_insurance_draft_grounds_its_length_cost_and_demonym() -> None:
    draft = InsuranceDraft(
        travelers=2, coverage="basic", trip_start="January 10", trip_end="12 days",
        residence_country="Dutch", trip_cost="1.200 €",
    )  # fmt: skip
    request = ground_draft(draft, REF)
    assert request == InsuranceRequest(
        travelers=2, coverage="basic", trip_start=date(2027, 1, 10), trip_end=date(2027, 1, 22),
        trip_cost=1200.0, trip_cost_currency="EUR", residence_country="Netherlands",
    )  # fmt: skip


def test_a_length_with_no_start_and_an_unreadable_cost_are_typed_problems() -> None:
    rejected = ground_draft(InsuranceDraft(trip_end="10 days", trip_cost="lots of money"), REF)
    assert isinstance(rejected, Rejection) and rejected.reason == "schema_invalid"
    assert {p.code for p in rejected.problems} == {"unparseable_date", "unparseable_amount"}


def test_a_bare_day_after_a_date_is_that_day_of_the_month() -> None:
    request = ground_draft(InsuranceDraft(trip_start="March 12", trip_end="19"), REF)
    assert isinstance(request, InsuranceRequest) and request.trip_end == date(2027, 3, 19)


@pytest.mark.parametrize(
    ("location", "city", "airport"),
    [("the Denver airport", "Denver", "DEN"), ("JFK", "New York", "JFK"),
     ("O'Hare", "Chicago", "ORD"), ("Union Station", None, None)],
)  # fmt: skip
def test_a_pickup_at_an_airport_names_its_city_and_airport(
    location: str, city: str | None, airport: str | None
) -> None:
    request = ground_draft(CarsDraft(pickup_location=location, pickup_date="March 3"), REF)
    assert isinstance(request, CarsRequest)
    assert (request.pickup_city, request.pickup_airport) == (city, airport)


def test_a_named_city_wins_over_an_airport_of_another_city() -> None:
    draft = CarsDraft(pickup_city="Boston", pickup_location="JFK", pickup_date="March 3")
    request = ground_draft(draft, REF)
    assert isinstance(request, CarsRequest)
    assert (request.pickup_city, request.pickup_airport) == ("Boston", None)


@pytest.mark.parametrize(
    ("text", "code"),
    [("Portugal-based", "PT"), ("living in Belgium", "BE"), ("Greek nationals", "GR"),
     ("Norwegian passport holders", "NO"), ("we are Mexican", "MX"), ("Florida", "US"),
     ("Quebec", "CA"), ("Ontario Canada", "CA"), ("Bavaria", None)],
)  # fmt: skip
def test_a_residence_said_with_its_frame_or_by_a_region_of_one_country(
    text: str, code: str | None
) -> None:
    assert ground_country(text) == code


def test_a_swiss_amount_without_cents() -> None:
    assert parse_money("CHF 2'750.-") == Money(2750.0, "CHF")


def test_a_range_copied_into_both_policy_dates_grounds_to_its_two_ends() -> None:
    draft = InsuranceDraft(trip_start="Aug 4-11", trip_end="our Aug 4-11 trip")
    request = ground_draft(draft, REF)
    assert isinstance(request, InsuranceRequest)
    assert (request.trip_start, request.trip_end) == (date(2027, 8, 4), date(2027, 8, 11))
