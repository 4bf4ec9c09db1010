"""Search: a grounded domain request in, every matching offer out, in a total, documented order.

Null fields constrain nothing. Boolean wishes are one-sided: `true` requires the feature
(nonstop, refundable, wifi, pets), `false` or null impose nothing — not wanting wifi is not
wanting a hotel without it. Text filters (airline, hotel and car names) match when every
word of the request appears in the name (case and accents ignored); an airline also
matches by its code.

What the supplier needs but the request lacks gets a default:

* flights: `passengers` 1; no `return_date` is one-way; no `seating_class` is every cabin;
  no `refundable` offers both fare families (basic and the refundable flex, +30%).
* hotels: `check_out_date` from `nights`, else one night; `rooms` enough for the guests at
  four per room, else 1.
* cars: `pickup_time` 10:00; no `dropoff_date` is a one-day rental; a `pickup_location`
  that names an airport or a station narrows to that desk, anything else to none.
* insurance: `travelers` 1; no `trip_end` is a one-day trip; no `trip_cost` is 0 (the
  plan's minimum premium); no `coverage` offers all three plans.

Missing essentials (where from, where to, which day), an unknown place and impossible input
(a return before the departure) are problems, answered as `invalid_request`.

Order: cheapest `total_price` first; ties by the domain's key (flights: earlier outbound
departure, fewer stops; hotels: more stars, better reviews; cars: airport, station,
downtown desk, then car type; insurance: coverage), then by `offer_id`, so it is total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, time, timedelta
from typing import get_args

from skiff_contracts.domains import (
    CarsRequest,
    Coverage,
    FlightsRequest,
    HotelsRequest,
    InsuranceRequest,
    SeatingClass,
)
from skiff_contracts.inventory import CarDesk, FareFamily
from skiff_contracts.problems import Problem
from skiff_inventory.catalog import CAR_DESKS, SupplierCatalog
from skiff_inventory.flights import Flight
from skiff_inventory.offers import (
    MAX_RENTAL_DAYS,
    MAX_STAY_NIGHTS,
    MAX_TRIP_DAYS,
    Priced,
    car_offer,
    flight_offer,
    hotel_offer,
    insurance_offer,
)
from skiff_travel.catalog import City
from skiff_travel.text import normalize_key

SUPPLIER_CURRENCY = "USD"

DomainRequest = FlightsRequest | HotelsRequest | CarsRequest | InsuranceRequest

GUESTS_PER_ROOM = 4
DEFAULT_PICKUP_TIME = time(10, 0)
_STATION_WORDS = frozenset(
    {"station", "depot", "intermodal", "train", "rail", "railway", "amtrak", "union", "terminal"}
)
_AIRPORT_WORDS = frozenset({"airport", "international", "intl", "aeropuerto", "aeroport"})


@dataclass(frozen=True)
class Rejected:
    """The request cannot be searched: every problem found."""

    problems: tuple[Problem, ...]


def _missing(field: str, what: str) -> Problem:
    return Problem(code="missing_field", field=field, message=f"the supplier needs {what}")


def _words_in(wanted: str, name: str) -> bool:
    return set(normalize_key(wanted).split()) <= set(normalize_key(name).split())


def search(catalog: SupplierCatalog, request: DomainRequest) -> list[Priced] | Rejected:
    """Every offer for `request` in the documented order, or why it cannot be searched."""
    if isinstance(request, FlightsRequest):
        return _flights(catalog, request)
    if isinstance(request, HotelsRequest):
        return _hotels(catalog, request)
    if isinstance(request, CarsRequest):
        return _cars(catalog, request)
    return _insurance(request)


# --- flights ---------------------------------------------------------------------------------


def _airport(
    catalog: SupplierCatalog, field: str, name: str | None, iata: str | None
) -> str | Problem:
    if iata:
        if catalog.airport_city(iata) is None:
            return Problem(
                code="unknown_airport", field=f"{field}_iata", message=f"no airport {iata!r}"
            )
        return iata.strip().upper()
    if not name:
        return _missing(field, f"the {field}")
    city = catalog.city(name, None)
    if city is None:
        return Problem(code="unknown_city", field=field, message=f"no single city {name!r}")
    return city.iata


def _flights(catalog: SupplierCatalog, request: FlightsRequest) -> list[Priced] | Rejected:
    origin = _airport(catalog, "origin", request.origin, request.origin_iata)
    destination = _airport(catalog, "destination", request.destination, request.destination_iata)
    problems = [p for p in (origin, destination) if isinstance(p, Problem)]
    if request.departure_date is None:
        problems.append(_missing("departure_date", "a departure date"))
    departure, back = request.departure_date, request.return_date
    if departure is not None and back is not None and back < departure:
        problems.append(
            Problem(
                code="return_before_departure",
                field="return_date",
                message="return before departure",
            )
        )
    if problems or departure is None or isinstance(origin, Problem):
        return Rejected(tuple(problems))
    if isinstance(destination, Problem):
        return Rejected((destination,))
    if catalog.airport_city(origin) == catalog.airport_city(destination):
        return Rejected(
            (
                Problem(
                    code="same_city",
                    field="destination",
                    message="origin and destination are one city",
                ),
            )
        )
    passengers = request.passengers or 1
    cabins = (request.seating_class,) if request.seating_class else get_args(SeatingClass)
    families: tuple[FareFamily, ...] = ("flex",) if request.refundable else ("basic", "flex")
    outbound = [
        f for f in catalog.flights(origin, destination, departure) if _flight_ok(f, request)
    ]
    inbound: list[Flight | None] = [None]
    if back is not None:
        inbound = [f for f in catalog.flights(destination, origin, back) if _flight_ok(f, request)]
    offers = [
        priced
        for out in outbound
        for into in inbound
        for cabin in cabins
        for family in families
        if (priced := flight_offer(out, into, cabin, family, passengers)) is not None
    ]
    return sorted(offers, key=_flight_order)


def _flight_ok(flight: Flight, request: FlightsRequest) -> bool:
    if request.nonstop and flight.slot.stops:
        return False
    if request.airline:
        airline = flight.slot.airline
        wanted = request.airline.strip()
        return wanted.upper() == airline.code or _words_in(wanted, airline.name)
    return True


def _flight_order(priced: Priced) -> tuple[object, ...]:
    offer = priced.offer
    assert offer.kind == "flight_offer"
    stops = offer.outbound.stops + (offer.inbound.stops if offer.inbound else 0)
    return (offer.total_price, offer.outbound.depart_at.astimezone(UTC), stops, offer.offer_id)


# --- hotels ----------------------------------------------------------------------------------


def _place(
    catalog: SupplierCatalog, field: str, name: str | None, iata: str | None
) -> City | Problem:
    if not name and not iata:
        return _missing(field, f"the {field.replace('_', ' ')}")
    city = catalog.city(name, iata)
    if city is None:
        return Problem(code="unknown_city", field=field, message=f"no single city {name or iata!r}")
    return city


def _stay(request: HotelsRequest) -> tuple[date, date] | Problem:
    check_in = request.check_in_date
    assert check_in is not None
    by_nights = check_in + timedelta(days=request.nights) if request.nights else None
    check_out = request.check_out_date or by_nights or check_in + timedelta(days=1)
    if by_nights is not None and check_out != by_nights:
        return Problem(
            code="nights_mismatch", field="nights", message="nights disagree with the dates"
        )
    if not 1 <= (check_out - check_in).days <= MAX_STAY_NIGHTS:
        return Problem(
            code="invalid_stay",
            field="check_out_date",
            message=f"a stay is 1 to {MAX_STAY_NIGHTS} nights, check-out after check-in",
        )
    return check_in, check_out


def _hotels(catalog: SupplierCatalog, request: HotelsRequest) -> list[Priced] | Rejected:
    city = _place(catalog, "location", request.location, request.location_iata)
    problems = [city] if isinstance(city, Problem) else []
    stay: tuple[date, date] | Problem | None = None
    if request.check_in_date is None:
        problems.append(_missing("check_in_date", "a check-in date"))
    else:
        stay = _stay(request)
        if isinstance(stay, Problem):
            problems.append(stay)
    guests = request.guests or 1
    rooms = request.rooms or max(1, math.ceil(guests / GUESTS_PER_ROOM))
    if guests > rooms * GUESTS_PER_ROOM:
        problems.append(
            Problem(
                code="too_many_guests",
                field="guests",
                message=f"at most {GUESTS_PER_ROOM} guests a room",
            )
        )
    if problems or isinstance(city, Problem) or not isinstance(stay, tuple):
        return Rejected(tuple(problems))
    offers = [
        hotel_offer(hotel, stay[0], stay[1], rooms)
        for hotel in catalog.hotels(city)
        if (request.star_rating is None or hotel.stars >= request.star_rating)
        and (request.review_rating is None or hotel.review_rating >= request.review_rating)
        and (not request.hotel_name or _words_in(request.hotel_name, hotel.name))
        and (not request.wifi or hotel.wifi)
        and (not request.pets_allowed or hotel.pets_allowed)
    ]
    return sorted(offers, key=_hotel_order)


def _hotel_order(priced: Priced) -> tuple[object, ...]:
    offer = priced.offer
    assert offer.kind == "hotel_offer"
    return (offer.total_price, -offer.stars, -offer.review_rating, offer.offer_id)


# --- cars ------------------------------------------------------------------------------------


def desks_for(location: str | None, city: City) -> tuple[CarDesk, ...]:
    """The desks a pickup location names: an airport, a station, or (unknown, none) every one."""
    if not location:
        return CAR_DESKS
    words = set(normalize_key(location).split())
    codes = {code.lower() for code in (city.iata, *city.airports)}
    if words & _AIRPORT_WORDS or words & codes:
        return ("airport",)
    if words & _STATION_WORDS:
        return ("station",)
    if words & {"downtown", "center", "centre", "city"}:
        return ("downtown",)
    return CAR_DESKS


def _cars(catalog: SupplierCatalog, request: CarsRequest) -> list[Priced] | Rejected:
    city = _place(catalog, "pickup_city", request.pickup_city, request.pickup_city_iata)
    problems = [city] if isinstance(city, Problem) else []
    pickup = request.pickup_date
    if pickup is None:
        problems.append(_missing("pickup_date", "a pickup date"))
    dropoff = request.dropoff_date or (pickup + timedelta(days=1) if pickup else None)
    if pickup and dropoff and not 0 <= (dropoff - pickup).days <= MAX_RENTAL_DAYS:
        problems.append(
            Problem(
                code="invalid_rental",
                field="dropoff_date",
                message=f"a rental is 1 to {MAX_RENTAL_DAYS} days, drop-off not before pickup",
            )
        )
    if problems or isinstance(city, Problem) or pickup is None or dropoff is None:
        return Rejected(tuple(problems))
    desks = desks_for(request.pickup_location, city)
    offers = [
        car_offer(car, pickup, request.pickup_time or DEFAULT_PICKUP_TIME, dropoff)
        for car in catalog.cars(city)
        if car.desk in desks
        and (request.car_type is None or car.car_type == request.car_type)
        and (not request.car_name or _words_in(request.car_name, car.car_name))
    ]
    return sorted(offers, key=_car_order)


def _car_order(priced: Priced) -> tuple[object, ...]:
    offer = priced.offer
    assert offer.kind == "car_offer"
    return (offer.total_price, CAR_DESKS.index(offer.desk), offer.car_type, offer.offer_id)


# --- insurance -------------------------------------------------------------------------------


def _insurance(request: InsuranceRequest) -> list[Priced] | Rejected:
    start = request.trip_start
    if start is None:
        return Rejected((_missing("trip_start", "the trip's start date"),))
    end = request.trip_end or start
    if not 0 <= (end - start).days < MAX_TRIP_DAYS:
        return Rejected(
            (
                Problem(
                    code="invalid_trip",
                    field="trip_end",
                    message="the trip ends before it starts or lasts over a year",
                ),
            )
        )
    if request.trip_cost_currency not in (None, SUPPLIER_CURRENCY):
        return Rejected(
            (
                Problem(
                    code="currency",
                    field="trip_cost",
                    message=f"the supplier insures trip costs in {SUPPLIER_CURRENCY}, not "
                    f"{request.trip_cost_currency}",
                ),
            )
        )
    travelers = request.travelers or 1
    coverages = (request.coverage,) if request.coverage else get_args(Coverage)
    offers = [
        insurance_offer(coverage, start, end, travelers, request.trip_cost or 0.0)
        for coverage in coverages
    ]
    return sorted(offers, key=_insurance_order)


def _insurance_order(priced: Priced) -> tuple[object, ...]:
    offer = priced.offer
    assert offer.kind == "insurance_offer"
    return (offer.total_price, get_args(Coverage).index(offer.coverage), offer.offer_id)
