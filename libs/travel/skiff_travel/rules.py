"""Ground a model's draft into a typed request and check the business rules.

`ground_draft` grounds every place, resolves every date and time, and checks the rules of
its domain. It reports *every* problem it finds, each with a specific code, and picks the
escalation reason by precedence: schema_invalid > ungrounded > ambiguous > business_rule.

Decisions:

* A value the draft leaves null stays null. Nothing is derived either: a hotel draft with
  check-in and nights but no check-out keeps `nights` and leaves `check_out_date` null (and
  the reverse), so the request says exactly what the user said; the inventory computes the
  stay from whichever it has.
* The second date of a pair (return, check-out, drop-off, trip end) is resolved with
  `after=` the first, so "the 5th" after a departure on the 20th is next month's 5th. When
  that inference carries an explicitly named month into the next year ("March 5" after a
  March 10 departure) the user almost certainly wrote the dates the wrong way round, so the
  order problem is reported rather than a trip of a year.
* Same-day return, check-out and drop-off: a same-day return flight or drop-off is allowed;
  a hotel check-out must be strictly after check-in.
* A date the calendar does not have ("February 30", "31 April", or past its end) is
  `impossible_date`, a business rule like a wrong order: the value was read and cannot be
  booked, so after the next tier the user is asked. Only a date nobody can read is
  `unparseable_date` (schema_invalid).
* The IATA code beside a city is the airport the user named when they named one ("JFK",
  "LaGuardia"), else the city's primary airport (see `catalog`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from pydantic import ValidationError

from skiff_contracts.domains import (
    CarsDraft,
    CarsRequest,
    FlightsDraft,
    FlightsRequest,
    HotelsDraft,
    HotelsRequest,
    InsuranceDraft,
    InsuranceRequest,
)
from skiff_contracts.problems import EscalationReason, Problem
from skiff_travel.catalog import Catalog, City, default_catalog
from skiff_travel.dates import (
    DateParseError,
    ImpossibleDateError,
    TimeParseError,
    date_range_end,
    resolve_date,
    resolve_duration,
    resolve_time,
)
from skiff_travel.grounding import (
    Ambiguous,
    Grounded,
    ground_city,
    ground_country,
    is_airport_phrase,
)
from skiff_travel.money import Money, MoneyParseError, parse_money

MAX_DAYS_AHEAD = 365
PARTY_MIN, PARTY_MAX = 1, 9
NIGHTS_MIN, NIGHTS_MAX = 1, 60
MAX_TRIP_COST = 1_000_000.0
DEFAULT_CURRENCY = "USD"  # the supplier's currency: a trip cost without one is in it
# Past this, a second date inferred into the next year is a swapped pair, not a long trip.
_SWAPPED_GAP = timedelta(days=180)

_PRECEDENCE: tuple[EscalationReason, ...] = (
    "schema_invalid",
    "ungrounded",
    "ambiguous",
    "business_rule",
)
_REASON_BY_CODE: dict[str, EscalationReason] = {
    "unparseable_date": "schema_invalid",
    "unparseable_time": "schema_invalid",
    "unparseable_amount": "schema_invalid",
    "schema_invalid": "schema_invalid",
    "unknown_city": "ungrounded",
    "unknown_country": "ungrounded",
    "ambiguous_city": "ambiguous",
}

Request = FlightsRequest | HotelsRequest | CarsRequest | InsuranceRequest
Draft = FlightsDraft | HotelsDraft | CarsDraft | InsuranceDraft


@dataclass(frozen=True)
class Rejection:
    """The draft cannot become a request: why (for escalation) and every problem found."""

    reason: EscalationReason
    problems: tuple[Problem, ...]


def reason_for(code: str) -> EscalationReason:
    """The escalation reason a problem code belongs to (business_rule unless listed)."""
    return _REASON_BY_CODE.get(code, "business_rule")


def rejection(problems: Sequence[Problem]) -> Rejection:
    """A rejection for `problems` (at least one), its reason picked by precedence."""
    reasons = {reason_for(p.code) for p in problems}
    return Rejection(reason=next(r for r in _PRECEDENCE if r in reasons), problems=tuple(problems))


def with_problems(outcome: Request | Rejection, problems: Sequence[Problem]) -> Request | Rejection:
    """`outcome` with problems found outside the draft (in the request text itself): a request
    becomes a rejection, and a rejection gains each problem it does not report yet."""
    if not problems:
        return outcome
    found = list(outcome.problems) if isinstance(outcome, Rejection) else []
    known = {(p.code, p.field) for p in found}
    return rejection([*found, *(p for p in problems if (p.code, p.field) not in known)])


def ground_draft(
    draft: Draft, reference_date: date, catalog: Catalog | None = None
) -> Request | Rejection:
    """Ground and validate a draft of any domain into its request, or reject it.

    `reference_date` is "today" for relative dates and the past/too-far checks.
    """
    check = _Checker(reference_date, catalog if catalog is not None else default_catalog())
    if isinstance(draft, FlightsDraft):
        return check.flights(draft)
    if isinstance(draft, HotelsDraft):
        return check.hotels(draft)
    if isinstance(draft, CarsDraft):
        return check.cars(draft)
    return check.insurance(draft)


@dataclass
class _Checker:
    """Collects problems while one draft is grounded."""

    reference: date
    catalog: Catalog
    problems: list[Problem] = field(default_factory=list)

    def add(self, code: str, message: str, field_name: str | None) -> None:
        self.problems.append(Problem(code=code, message=message, field=field_name))

    def finish(self, build: type[Request], values: dict[str, object]) -> Request | Rejection:
        if not self.problems:
            try:
                return build.model_validate(values)
            except ValidationError as exc:
                # Every range the contract enforces is checked above with its own code;
                # this is the safety net should the contract grow a rule first.
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"]) or None
                    self.add("schema_invalid", error["msg"], where)
        return rejection(self.problems)

    # --- field helpers ----------------------------------------------------------------------

    def place(self, text: str | None, field_name: str) -> tuple[City | None, str | None]:
        """(city, iata) for a place field; problems recorded for unknown or ambiguous ones."""
        if text is None:
            return None, None
        found = ground_city(text, self.catalog)
        if isinstance(found, Grounded):
            return found.city, found.iata
        if isinstance(found, Ambiguous):
            labels = "; ".join(c.label for c in found.candidates)
            self.add("ambiguous_city", f"{text!r} could be any of: {labels}", field_name)
        else:
            hint = f"; did you mean {' or '.join(found.suggestions)}?" if found.suggestions else ""
            self.add("unknown_city", f"{text!r} is not a city we know{hint}", field_name)
        return None, None

    def airport(self, location: str | None) -> Grounded | None:
        """The airport a pickup location names ("JFK", "the Denver airport", "O'Hare"), if it
        names one; any other location (a station, downtown, an address) is None."""
        if location is None:
            return None
        found = ground_city(location, self.catalog)
        if isinstance(found, Grounded) and (found.airport or is_airport_phrase(location)):
            return found
        return None

    def first_date(self, text: str | None, field_name: str) -> date | None:
        if text is None:
            return None
        try:
            value = resolve_date(date_range_end(text, 0), self.reference)
        except DateParseError as exc:
            self.date_error(exc, field_name)
            return None
        self._date_window(value, field_name)
        return value

    def date_error(self, error: DateParseError, field_name: str) -> None:
        """A date that cannot exist is a business rule (the user's to settle); one that cannot
        be read is the model's output failing (the next tier reads it again)."""
        code = "impossible_date" if isinstance(error, ImpossibleDateError) else "unparseable_date"
        self.add(code, str(error), field_name)

    def second_date(
        self,
        text: str | None,
        field_name: str,
        first: date | None,
        first_name: str,
        order_code: str,
        strict: bool,
    ) -> date | None:
        """A date that must not precede `first` (strictly follow it when `strict`)."""
        if text is None:
            return None
        text = date_range_end(text, 1)
        if (length := resolve_duration(text)) is not None:
            if first is None:
                self.add(
                    "unparseable_date",
                    f"{field_name} {text!r} is a length of time, with no {first_name} to count"
                    " it from",
                    field_name,
                )
                return None
            try:
                end = first + length
            except OverflowError:
                self.add("impossible_date", f"{field_name} {text!r} ends past the calendar",
                         field_name)  # fmt: skip
                return None
            self._date_window(end, field_name)
            return end
        if first is not None and text.strip().isdigit():
            text = f"the {text.strip()}"  # "March 12 to 19": a bare number after a date
        try:
            value = resolve_date(text, self.reference, after=first)
            plain = resolve_date(text, self.reference) if first is not None else value
        except DateParseError as exc:
            self.date_error(exc, field_name)
            return None
        if first is not None:
            swapped = value != plain and plain < first and value - first > _SWAPPED_GAP
            shown = plain if swapped else value
            if swapped or shown < first or (strict and shown == first):
                relation = "after" if strict else "on or after"
                self.add(
                    order_code,
                    f"{field_name} {shown.isoformat()} must be {relation} {first_name}"
                    f" {first.isoformat()}",
                    field_name,
                )
                return value
        self._date_window(value, field_name)
        return value

    def _date_window(self, value: date, field_name: str) -> None:
        if value < self.reference:
            self.add(
                "past_date",
                f"{field_name} {value.isoformat()} is before today ({self.reference.isoformat()})",
                field_name,
            )
        elif (value - self.reference).days > MAX_DAYS_AHEAD:  # no addition: 9999-12-31 + 1y
            self.add(
                "date_too_far",
                f"{field_name} {value.isoformat()} is more than {MAX_DAYS_AHEAD} days ahead",
                field_name,
            )

    def time_of_day(self, text: str | None, field_name: str) -> time | None:
        if text is None:
            return None
        try:
            return resolve_time(text)
        except TimeParseError as exc:
            self.add("unparseable_time", str(exc), field_name)
            return None

    def party(self, value: int | None, field_name: str) -> None:
        if value is not None and not PARTY_MIN <= value <= PARTY_MAX:
            self.add(
                "party_size",
                f"{field_name} must be between {PARTY_MIN} and {PARTY_MAX}, got {value}",
                field_name,
            )

    # --- domains ----------------------------------------------------------------------------

    def flights(self, draft: FlightsDraft) -> Request | Rejection:
        origin, origin_iata = self.place(draft.origin, "origin")
        destination, destination_iata = self.place(draft.destination, "destination")
        if origin is not None and origin == destination:
            self.add(
                "same_origin_destination",
                f"origin and destination are both {origin.label}",
                "destination",
            )
        departure = self.first_date(draft.departure_date, "departure_date")
        return_date = self.second_date(
            draft.return_date,
            "return_date",
            departure,
            "departure_date",
            "return_before_departure",
            strict=False,
        )
        self.party(draft.passengers, "passengers")
        return self.finish(
            FlightsRequest,
            {
                "origin": origin.name if origin else None,
                "origin_iata": origin_iata,
                "destination": destination.name if destination else None,
                "destination_iata": destination_iata,
                "departure_date": departure,
                "return_date": return_date,
                "passengers": draft.passengers,
                "seating_class": draft.seating_class,
                "airline": draft.airline,
                "nonstop": draft.nonstop,
                "refundable": draft.refundable,
            },
        )

    def hotels(self, draft: HotelsDraft) -> Request | Rejection:
        location, location_iata = self.place(draft.location, "location")
        check_in = self.first_date(draft.check_in_date, "check_in_date")
        check_out = self.second_date(
            draft.check_out_date,
            "check_out_date",
            check_in,
            "check_in_date",
            "checkout_not_after_checkin",
            strict=True,
        )
        if draft.nights is not None:
            if not NIGHTS_MIN <= draft.nights <= NIGHTS_MAX:
                self.add(
                    "nights_range",
                    f"nights must be between {NIGHTS_MIN} and {NIGHTS_MAX}, got {draft.nights}",
                    "nights",
                )
            elif check_in and check_out and (check_out - check_in).days != draft.nights:
                self.add(
                    "nights_mismatch",
                    f"{draft.nights} nights, but {check_in.isoformat()} to"
                    f" {check_out.isoformat()} is {(check_out - check_in).days}",
                    "nights",
                )
        self.party(draft.rooms, "rooms")
        self.party(draft.guests, "guests")
        if draft.star_rating is not None and not 1 <= draft.star_rating <= 5:
            self.add(
                "rating_range",
                f"star_rating must be 1 to 5, got {draft.star_rating}",
                "star_rating",
            )
        if draft.review_rating is not None and not 0 <= draft.review_rating <= 5:
            self.add(
                "rating_range",
                f"review_rating must be 0 to 5, got {draft.review_rating}",
                "review_rating",
            )
        return self.finish(
            HotelsRequest,
            {
                "location": location.name if location else None,
                "location_iata": location_iata,
                "check_in_date": check_in,
                "check_out_date": check_out,
                "nights": draft.nights,
                "rooms": draft.rooms,
                "guests": draft.guests,
                "star_rating": draft.star_rating,
                "review_rating": draft.review_rating,
                "hotel_name": draft.hotel_name,
                "wifi": draft.wifi,
                "pets_allowed": draft.pets_allowed,
            },
        )

    def cars(self, draft: CarsDraft) -> Request | Rejection:
        city, city_iata = self.place(draft.pickup_city, "pickup_city")
        airport = self.airport(draft.pickup_location)
        if airport is not None and draft.pickup_city is None:
            city, city_iata = airport.city, airport.iata  # "at JFK" names New York
        pickup = self.first_date(draft.pickup_date, "pickup_date")
        dropoff = self.second_date(
            draft.dropoff_date,
            "dropoff_date",
            pickup,
            "pickup_date",
            "dropoff_before_pickup",
            strict=False,
        )
        pickup_time = self.time_of_day(draft.pickup_time, "pickup_time")
        return self.finish(
            CarsRequest,
            {
                "pickup_city": city.name if city else None,
                "pickup_city_iata": city_iata,
                "pickup_location": draft.pickup_location,
                "pickup_airport": airport.iata if airport and airport.city == city else None,
                "pickup_date": pickup,
                "pickup_time": pickup_time,
                "dropoff_date": dropoff,
                "car_type": draft.car_type,
                "car_name": draft.car_name,
            },
        )

    def insurance(self, draft: InsuranceDraft) -> Request | Rejection:
        self.party(draft.travelers, "travelers")
        start = self.first_date(draft.trip_start, "trip_start")
        end = self.second_date(
            draft.trip_end, "trip_end", start, "trip_start", "trip_end_before_start", strict=False
        )
        country = self.country(draft.residence_country)
        cost = self.money(draft.trip_cost, "trip_cost")
        return self.finish(
            InsuranceRequest,
            {
                "travelers": draft.travelers,
                "coverage": draft.coverage,
                "trip_start": start,
                "trip_end": end,
                "trip_cost": cost.amount if cost else None,
                "trip_cost_currency": cost.currency if cost else None,
                "residence_country": country,
            },
        )

    def money(self, text: str | None, field_name: str) -> Money | None:
        if text is None:
            return None
        try:
            found = parse_money(text)
        except MoneyParseError as exc:
            self.add("unparseable_amount", str(exc), field_name)
            return None
        if found.amount <= 0 or found.amount > MAX_TRIP_COST:
            self.add(
                "amount_range",
                f"{field_name} must be above 0 and at most {MAX_TRIP_COST:,.0f}, got {text!r}",
                field_name,
            )
            return None
        return Money(found.amount, found.currency or DEFAULT_CURRENCY)

    def country(self, text: str | None) -> str | None:
        if text is None:
            return None
        code = ground_country(text, self.catalog)
        name = self.catalog.country_name(code) if code else None
        if name is None:
            self.add("unknown_country", f"{text!r} is not a country we know", "residence_country")
        return name
