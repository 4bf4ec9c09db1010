"""The four travel domains and their request schemas.

Two schemas per domain:

* the *draft* is what a model (SLM or LLM tier) emits: places and dates exactly as the
  user wrote them ("Philly", "next Friday"), so a small model only copies spans;
* the *request* is the draft after grounding and validation: canonical cities with IATA
  codes, ISO dates, checked business rules. Only requests reach the saga.

Field names follow the normalised slot names of the SGD development data.
A value the user did not give stays null.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal, get_args

from pydantic import Field

from skiff_contracts.base import Frozen

Domain = Literal["flights", "hotels", "cars", "insurance"]
DOMAINS: tuple[Domain, ...] = ("flights", "hotels", "cars", "insurance")
DOMAIN_NAMES: dict[Domain, str] = {
    "flights": "flights", "hotels": "hotels", "cars": "rental cars", "insurance": "travel insurance"
}  # fmt: skip
BOOKABLE = "flights, hotels, rental cars and travel insurance"
# Work a request may ask for that no micro-SLM covers: the router names it, the planner
# declines it and the LLM tier logs it as `no_model` (the conversion loop's input).
UnsupportedWork = Literal[
    "trains",
    "buses",
    "restaurants",
    "events",
    "homes",
    "ride_sharing",
    "attractions",
    "weather",
    "banks",
    "calendar",
    "media",
    "movies",
    "music",
    "services",
]
UNSUPPORTED_WORK: tuple[UnsupportedWork, ...] = get_args(UnsupportedWork)
ROUTE_LABELS: tuple[str, ...] = (*DOMAINS, *UNSUPPORTED_WORK)

SeatingClass = Literal["economy", "premium_economy", "business", "first"]
CarType = Literal[
    "economy", "compact", "standard", "full_size", "hatchback", "sedan", "suv", "minivan", "luxury"
]
Coverage = Literal["basic", "standard", "premium"]

PartySize = Annotated[int, Field(ge=1, le=9)]
Text = Annotated[str, Field(min_length=1, max_length=120)]


# --- drafts: what a model emits -------------------------------------------------------------


class FlightsDraft(Frozen):
    """A flight request as the user phrased it."""

    origin: Text | None = None
    destination: Text | None = None
    departure_date: Text | None = None
    return_date: Text | None = None
    passengers: int | None = None
    seating_class: SeatingClass | None = None
    airline: Text | None = None
    nonstop: bool | None = None
    refundable: bool | None = None


class HotelsDraft(Frozen):
    """A hotel request as the user phrased it."""

    location: Text | None = None
    check_in_date: Text | None = None
    check_out_date: Text | None = None
    nights: int | None = None
    rooms: int | None = None
    guests: int | None = None
    star_rating: int | None = None
    review_rating: float | None = None
    hotel_name: Text | None = None
    wifi: bool | None = None
    pets_allowed: bool | None = None


class CarsDraft(Frozen):
    """A rental-car request as the user phrased it."""

    pickup_city: Text | None = None
    pickup_location: Text | None = None
    pickup_date: Text | None = None
    pickup_time: Text | None = None
    dropoff_date: Text | None = None
    car_type: CarType | None = None
    car_name: Text | None = None


class InsuranceDraft(Frozen):
    """A travel-insurance request as the user phrased it."""

    travelers: int | None = None
    coverage: Coverage | None = None
    trip_start: Text | None = None
    trip_end: Text | None = None
    residence_country: Text | None = None
    trip_cost: Text | None = None


Draft = FlightsDraft | HotelsDraft | CarsDraft | InsuranceDraft

DRAFTS: dict[Domain, type[Draft]] = {
    "flights": FlightsDraft,
    "hotels": HotelsDraft,
    "cars": CarsDraft,
    "insurance": InsuranceDraft,
}


# --- requests: grounded and validated --------------------------------------------------------


class FlightsRequest(Frozen):
    """A grounded flight request. Places are canonical city names with IATA codes beside them."""

    domain: Literal["flights"] = "flights"
    origin: str | None = None
    origin_iata: str | None = None
    destination: str | None = None
    destination_iata: str | None = None
    departure_date: date | None = None
    return_date: date | None = Field(default=None, description="null for one-way")
    passengers: PartySize | None = None
    seating_class: SeatingClass | None = None
    airline: str | None = None
    nonstop: bool | None = None
    refundable: bool | None = None


class HotelsRequest(Frozen):
    """A grounded hotel request."""

    domain: Literal["hotels"] = "hotels"
    location: str | None = None
    location_iata: str | None = None
    check_in_date: date | None = None
    check_out_date: date | None = None
    nights: Annotated[int, Field(ge=1, le=60)] | None = None
    rooms: PartySize | None = None
    guests: PartySize | None = None
    star_rating: Annotated[int, Field(ge=1, le=5)] | None = None
    review_rating: Annotated[float, Field(ge=0, le=5)] | None = None
    hotel_name: str | None = None
    wifi: bool | None = None
    pets_allowed: bool | None = None


class CarsRequest(Frozen):
    """A grounded rental-car request."""

    domain: Literal["cars"] = "cars"
    pickup_city: str | None = None
    pickup_city_iata: str | None = None
    pickup_location: str | None = None
    pickup_airport: str | None = Field(
        default=None, description="IATA code, when the pickup location is an airport"
    )
    pickup_date: date | None = None
    pickup_time: time | None = None
    dropoff_date: date | None = None
    car_type: CarType | None = None
    car_name: str | None = None


class InsuranceRequest(Frozen):
    """A grounded travel-insurance request. `trip_cost` is the cost the traveller stated, in
    `trip_cost_currency`; when they stated none, the planner sets it from the held offers."""

    domain: Literal["insurance"] = "insurance"
    travelers: PartySize | None = None
    coverage: Coverage | None = None
    trip_start: date | None = None
    trip_end: date | None = None
    trip_cost: Annotated[float, Field(ge=0)] | None = None
    trip_cost_currency: str | None = Field(default=None, description="ISO 4217 code")
    residence_country: str | None = None


DomainRequest = Annotated[
    FlightsRequest | HotelsRequest | CarsRequest | InsuranceRequest,
    Field(discriminator="domain"),
]

REQUESTS: dict[Domain, type[FlightsRequest | HotelsRequest | CarsRequest | InsuranceRequest]] = {
    "flights": FlightsRequest,
    "hotels": HotelsRequest,
    "cars": CarsRequest,
    "insurance": InsuranceRequest,
}


class RouteLabels(Frozen):
    """What a router answers (task `router.route`): the domains a request asks for, and the
    work it asks for that no micro-SLM covers."""

    domains: tuple[Domain, ...] = ()
    unsupported: tuple[UnsupportedWork, ...] = ()
