"""The inventory service's contracts: offers, and the four supplier operations with their replies.

Every operation is core NATS request/reply on `skiff.v1.inventory.<domain>.<op>`:

* `SearchOffers` → `OffersFound`
* `PlaceHold` → `HoldPlaced`
* `ConfirmHold` → `BookingConfirmed`
* `ReleaseHold` → `HoldReleased` (also cancels a confirmed booking)

and any of them may reply `InventoryFailed`. Holds, confirms and releases carry an
`idempotency_key`: the same key with the same request returns the first reply and changes
nothing. A hold's key names the intent ("trip T's flight hold"), so a repeated hold key
returns the first hold even when it names another offer (a retried search may pick one).
Prices are in `currency` (the supplier quotes USD), rounded to cents.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, model_validator

from skiff_contracts.base import Frozen
from skiff_contracts.domains import CarType, Coverage, Domain, DomainRequest, SeatingClass
from skiff_contracts.problems import Problem

Money = Annotated[float, Field(ge=0)]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=200)]
Identifier = Annotated[str, Field(min_length=1, max_length=200)]
FareFamily = Literal["basic", "flex"]
CarDesk = Literal["airport", "station", "downtown"]

MAX_SEARCH_LIMIT = 100
MAX_HOLD_TTL_S = 86_400.0

InventoryOperation = Literal["search", "hold", "confirm", "release"]
INVENTORY_OPERATIONS: tuple[InventoryOperation, ...] = ("search", "hold", "confirm", "release")

FailureCode = Literal[
    "sold_out",  # not enough seats, rooms or cars left for this offer
    "not_found",  # no such offer or hold
    "hold_expired",  # the hold's TTL passed before it was confirmed
    "hold_released",  # the hold was released (or the booking cancelled) before this confirm
    "invalid_request",  # malformed, schema-invalid or impossible input; see `errors`
    "injected_failure",  # a test knob made this call fail
    "unavailable",  # the supplier could not answer now (storage error); try again
]


# --- offers ----------------------------------------------------------------------------------


class FlightLeg(Frozen):
    """One direction of a flight offer. Times are local to the airport, with their UTC offset."""

    flight_number: str
    airline: str
    origin: str = Field(description="IATA code of the departure airport")
    destination: str = Field(description="IATA code of the arrival airport")
    depart_at: datetime
    arrive_at: datetime
    duration_minutes: int = Field(ge=1)
    cabin: SeatingClass
    stops: int = Field(ge=0)


class FlightOffer(Frozen):
    """Seats for `passengers` on an outbound flight and, for a return trip, an inbound one."""

    kind: Literal["flight_offer"] = "flight_offer"
    offer_id: str
    outbound: FlightLeg
    inbound: FlightLeg | None = Field(default=None, description="null for one-way")
    cabin: SeatingClass
    fare_family: FareFamily
    fare: Money = Field(description="price per passenger, both legs")
    passengers: int = Field(ge=1)
    total_price: Money
    currency: str = "USD"
    refundable: bool


class HotelOffer(Frozen):
    """`rooms` rooms at one hotel from check-in to check-out."""

    kind: Literal["hotel_offer"] = "hotel_offer"
    offer_id: str
    hotel_id: str
    name: str
    city: str
    iata: str
    stars: int = Field(ge=1, le=5)
    review_rating: float = Field(ge=0, le=5)
    check_in: date
    check_out: date
    nights: int = Field(ge=1)
    rooms: int = Field(ge=1)
    nightly_rate: Money = Field(description="per room per night")
    total_price: Money
    currency: str = "USD"
    wifi: bool
    pets_allowed: bool


class CarOffer(Frozen):
    """One rental car of a class at one desk of a city, for whole days."""

    kind: Literal["car_offer"] = "car_offer"
    offer_id: str
    city: str
    iata: str
    location: str
    desk: CarDesk
    car_type: CarType
    car_name: str = Field(description="the class's model, 'or similar'")
    pickup_at: datetime = Field(description="local time at the desk, with its UTC offset")
    dropoff_date: date
    days: int = Field(ge=1)
    daily_rate: Money
    total_price: Money
    currency: str = "USD"


class InsuranceOffer(Frozen):
    """A travel-insurance plan for a party and a trip."""

    kind: Literal["insurance_offer"] = "insurance_offer"
    offer_id: str
    coverage: Coverage
    travelers: int = Field(ge=1)
    trip_start: date
    trip_end: date
    trip_cost: Money
    medical_limit: Money
    cancellation_limit: Money
    premium: Money
    total_price: Money = Field(description="equal to the premium")
    currency: str = "USD"


Offer = Annotated[FlightOffer | HotelOffer | CarOffer | InsuranceOffer, Field(discriminator="kind")]
OFFER: TypeAdapter[FlightOffer | HotelOffer | CarOffer | InsuranceOffer] = TypeAdapter(Offer)

OFFER_DOMAIN: dict[str, Domain] = {
    "flight_offer": "flights",
    "hotel_offer": "hotels",
    "car_offer": "cars",
    "insurance_offer": "insurance",
}


# --- operations ------------------------------------------------------------------------------


class SearchOffers(Frozen):
    """Find offers for a grounded domain request; null fields of `params` constrain nothing."""

    kind: Literal["search_offers"] = "search_offers"
    domain: Domain
    params: DomainRequest
    limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_LIMIT)] = 20

    @model_validator(mode="after")
    def _params_match_domain(self) -> SearchOffers:
        if self.params.domain != self.domain:
            raise ValueError(f"params are for {self.params.domain}, not {self.domain}")
        return self


class PlaceHold(Frozen):
    """Hold the stock behind an offer until `ttl_s` passes (null: the supplier's default)."""

    kind: Literal["place_hold"] = "place_hold"
    idempotency_key: IdempotencyKey
    offer_id: Identifier
    ttl_s: Annotated[float, Field(gt=0, le=MAX_HOLD_TTL_S)] | None = None


class ConfirmHold(Frozen):
    """Turn a live hold into a booking. Never confirms an expired or released hold."""

    kind: Literal["confirm_hold"] = "confirm_hold"
    idempotency_key: IdempotencyKey
    hold_id: Identifier


class ReleaseHold(Frozen):
    """Give a hold's stock back; on a confirmed hold this cancels the booking.

    Name the hold by `hold_id`, or by `hold_key` (the key it was placed with). Releasing by key
    works before the placement itself has arrived: the key is then spent, and a later
    `PlaceHold` with it fails `hold_released`. That is what lets a saga record a step's undo
    before the step runs.
    """

    kind: Literal["release_hold"] = "release_hold"
    idempotency_key: IdempotencyKey
    hold_id: Identifier | None = None
    hold_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _names_one_hold(self) -> ReleaseHold:
        if (self.hold_id is None) == (self.hold_key is None):
            raise ValueError("give exactly one of hold_id and hold_key")
        return self


InventoryRequest = Annotated[
    SearchOffers | PlaceHold | ConfirmHold | ReleaseHold, Field(discriminator="kind")
]
INVENTORY_REQUEST: TypeAdapter[SearchOffers | PlaceHold | ConfirmHold | ReleaseHold] = TypeAdapter(
    InventoryRequest
)


# --- replies ---------------------------------------------------------------------------------


class OffersFound(Frozen):
    """Matching offers in the documented order (cheapest first); empty when nothing matches."""

    kind: Literal["offers_found"] = "offers_found"
    domain: Domain
    offers: tuple[Offer, ...]


class HoldPlaced(Frozen):
    """The offer's stock is held for this hold until `expires_at` (UTC)."""

    kind: Literal["hold_placed"] = "hold_placed"
    hold_id: str
    offer: Offer
    expires_at: datetime


class BookingConfirmed(Frozen):
    """The hold is booked. Confirming it again returns this same booking."""

    kind: Literal["booking_confirmed"] = "booking_confirmed"
    hold_id: str
    offer_id: str
    confirmation_code: str
    total_price: Money
    currency: str = "USD"


class HoldReleased(Frozen):
    """The hold's stock is back. `already`: it was released, expired or cancelled before."""

    kind: Literal["hold_released"] = "hold_released"
    hold_id: str
    already: bool


class InventoryFailed(Frozen):
    """The operation did not happen; `retryable` says whether the same call may succeed later."""

    kind: Literal["inventory_failed"] = "inventory_failed"
    code: FailureCode
    message: str
    retryable: bool = False
    errors: tuple[Problem, ...] = ()


SearchReply = Annotated[OffersFound | InventoryFailed, Field(discriminator="kind")]
HoldReply = Annotated[HoldPlaced | InventoryFailed, Field(discriminator="kind")]
ConfirmReply = Annotated[BookingConfirmed | InventoryFailed, Field(discriminator="kind")]
ReleaseReply = Annotated[HoldReleased | InventoryFailed, Field(discriminator="kind")]
InventoryReply = Annotated[
    OffersFound | HoldPlaced | BookingConfirmed | HoldReleased | InventoryFailed,
    Field(discriminator="kind"),
]

SEARCH_REPLY: TypeAdapter[OffersFound | InventoryFailed] = TypeAdapter(SearchReply)
HOLD_REPLY: TypeAdapter[HoldPlaced | InventoryFailed] = TypeAdapter(HoldReply)
CONFIRM_REPLY: TypeAdapter[BookingConfirmed | InventoryFailed] = TypeAdapter(ConfirmReply)
RELEASE_REPLY: TypeAdapter[HoldReleased | InventoryFailed] = TypeAdapter(ReleaseReply)
INVENTORY_REPLY: TypeAdapter[
    OffersFound | HoldPlaced | BookingConfirmed | HoldReleased | InventoryFailed
] = TypeAdapter(InventoryReply)
