"""What a trip needs before it can be booked, and what one part of a trip tells another.

Pure functions over the extracted requests. A hotel "for those nights" takes its city and
dates from the flight; insurance takes its dates and travellers from the flight or hotel and
its trip cost from the held offers. Only empty fields are filled; nothing the user said is
overwritten, and what is still missing becomes a question to the user.
"""

from __future__ import annotations

from collections.abc import Mapping

from skiff_contracts.domains import (
    CarsRequest,
    Domain,
    FlightsRequest,
    HotelsRequest,
    InsuranceRequest,
)
from skiff_contracts.inventory import Offer

Request = FlightsRequest | HotelsRequest | CarsRequest | InsuranceRequest

REQUIRED: dict[Domain, tuple[str, ...]] = {
    "flights": ("origin", "destination", "departure_date"),
    "hotels": ("location", "check_in_date"),
    "cars": ("pickup_city", "pickup_date"),
    "insurance": ("trip_start", "trip_end"),
}
ASK: dict[str, str] = {
    "origin": "where you fly from",
    "destination": "where you fly to",
    "departure_date": "the day you fly out",
    "location": "the city of the hotel",
    "check_in_date": "the check-in date",
    "pickup_city": "the city where you pick up the car",
    "pickup_date": "the day you pick up the car",
    "trip_start": "when the trip starts",
    "trip_end": "when the trip ends",
}
HOLD_FIRST: tuple[Domain, ...] = ("flights", "hotels", "cars")


def _fill(request: Request, values: Mapping[str, object]) -> Request:
    empty = {k: v for k, v in values.items() if v is not None and getattr(request, k) is None}
    return request.model_copy(update=empty) if empty else request


def complete(requests: Mapping[Domain, Request]) -> dict[Domain, Request]:
    """Each request with its empty fields filled from the trip's other requests."""
    flight = requests.get("flights")
    hotel = requests.get("hotels")
    done: dict[Domain, Request] = dict(requests)
    if isinstance(flight, FlightsRequest) and isinstance(hotel, HotelsRequest):
        done["hotels"] = hotel = _fill(hotel, {
            "location": flight.destination, "location_iata": flight.destination_iata,
            "check_in_date": flight.departure_date, "check_out_date": flight.return_date,
            "guests": flight.passengers,
        })  # fmt: skip
    cars = done.get("cars")
    if isinstance(cars, CarsRequest) and isinstance(flight, FlightsRequest):
        done["cars"] = _fill(cars, {
            "pickup_city": flight.destination, "pickup_city_iata": flight.destination_iata,
            "pickup_date": flight.departure_date, "dropoff_date": flight.return_date,
        })  # fmt: skip
    elif isinstance(cars, CarsRequest) and isinstance(hotel, HotelsRequest):
        done["cars"] = _fill(cars, {
            "pickup_city": hotel.location, "pickup_city_iata": hotel.location_iata,
            "pickup_date": hotel.check_in_date, "dropoff_date": hotel.check_out_date,
        })  # fmt: skip
    insurance = done.get("insurance")
    if isinstance(insurance, InsuranceRequest):
        if isinstance(flight, FlightsRequest):
            insurance = _fill(insurance, {
                "trip_start": flight.departure_date,
                "trip_end": flight.return_date or flight.departure_date,
                "travelers": flight.passengers,
            })  # fmt: skip
        if isinstance(hotel, HotelsRequest):
            insurance = _fill(insurance, {
                "trip_start": hotel.check_in_date, "trip_end": hotel.check_out_date,
                "travelers": hotel.guests,
            })  # fmt: skip
        if isinstance(cars, CarsRequest):
            insurance = _fill(insurance, {
                "trip_start": cars.pickup_date, "trip_end": cars.dropoff_date,
            })  # fmt: skip
        done["insurance"] = insurance
    return done


def missing(requests: Mapping[Domain, Request]) -> dict[Domain, tuple[str, ...]]:
    """Required fields still empty, per domain (domains with nothing missing are left out)."""
    out = {}
    for domain, request in requests.items():
        empty = tuple(f for f in REQUIRED[domain] if getattr(request, f) is None)
        if empty:
            out[domain] = empty
    return out


def question_for(gaps: Mapping[Domain, tuple[str, ...]]) -> str:
    parts = [
        f"for the {domain}: {', '.join(ASK[f] for f in fields)}" for domain, fields in gaps.items()
    ]
    return "To book this trip I still need " + "; ".join(parts) + "."


def with_trip_cost(insurance: InsuranceRequest, held: Mapping[Domain, Offer]) -> InsuranceRequest:
    """The insurance request priced on the cost the traveller stated, else on what is held."""
    if insurance.trip_cost is not None:
        return insurance
    cost = round(sum(offer.total_price for d, offer in held.items() if d != "insurance"), 2)
    currency = next((o.currency for d, o in held.items() if d != "insurance"), None)
    return insurance.model_copy(update={"trip_cost": cost, "trip_cost_currency": currency})
