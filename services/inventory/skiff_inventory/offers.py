"""Offers: built from the catalog, named by ids that rebuild them, priced, with their stock needs.

An offer id says everything the offer is, so a hold needs no stored search result: the id is
decoded and the offer rebuilt from the seeded catalog, identical to the one searched.

    fl.<from>.<to>.<yyyymmdd>.<flight>[.<yyyymmdd>.<flight>].<cabin>.<fare family>.<passengers>
    ht.<hotel id>.<check-in yyyymmdd>.<check-out yyyymmdd>.<rooms>
    car.<city slug>.<desk>.<car type>.<pickup yyyymmddThhmm>.<drop-off yyyymmdd>
    ins.<coverage>.<start yyyymmdd>.<end yyyymmdd>.<travelers>.<trip cost in cents>

Stock is counted per resource and date: a seat in one cabin of one flight on one day
(`seat:<from>-<to>:<flight>:<date>:<cabin>`), a room of one hotel for one night
(`room:<hotel id>:<night>`), a car of one class at one desk for one day
(`car:<city slug>:<desk>:<car type>:<day>`). Insurance has no stock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

from skiff_contracts.domains import CarType, Coverage, SeatingClass
from skiff_contracts.inventory import (
    CarDesk,
    CarOffer,
    FareFamily,
    FlightLeg,
    FlightOffer,
    HotelOffer,
    InsuranceOffer,
)
from skiff_inventory.catalog import PLANS, CarClass, Hotel, SupplierCatalog, city_slug
from skiff_inventory.flights import Flight
from skiff_inventory.seeding import money

OfferModel = FlightOffer | HotelOffer | CarOffer | InsuranceOffer

MAX_PARTY = 9
MAX_STAY_NIGHTS = 60
MAX_RENTAL_DAYS = 60
MAX_TRIP_DAYS = 366
# A same-day return leaves at least this long after the outbound lands.
MIN_CONNECTION = timedelta(minutes=60)


@dataclass(frozen=True)
class Need:
    """`quantity` units of one resource, of which the catalog has `capacity`."""

    resource: str
    capacity: int
    quantity: int


@dataclass(frozen=True)
class Priced:
    """An offer and the stock a hold on it takes."""

    offer: OfferModel
    needs: tuple[Need, ...]


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


def _parse_day(text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").date()


# --- flights ---------------------------------------------------------------------------------


def _leg(flight: Flight, cabin: SeatingClass) -> FlightLeg:
    return FlightLeg(
        flight_number=flight.flight_number,
        airline=flight.slot.airline.name,
        origin=flight.origin,
        destination=flight.destination,
        depart_at=flight.depart_at,
        arrive_at=flight.arrive_at,
        duration_minutes=flight.slot.duration_minutes,
        cabin=cabin,
        stops=flight.slot.stops,
    )


def _seat_need(flight: Flight, cabin: SeatingClass, passengers: int) -> Need:
    route = f"{flight.origin}-{flight.destination}"
    resource = f"seat:{route}:{flight.flight_number}:{flight.day.isoformat()}:{cabin}"
    return Need(resource, flight.seats(cabin), passengers)


def connects(outbound: Flight, inbound: Flight) -> bool:
    """A return flight must leave after the outbound lands (with time to turn around)."""
    return inbound.depart_at >= outbound.arrive_at + MIN_CONNECTION


def flight_offer(
    outbound: Flight,
    inbound: Flight | None,
    cabin: SeatingClass,
    family: FareFamily,
    passengers: int,
) -> Priced | None:
    """Seats on one or two flights; None when a flight has no such cabin or cannot connect."""
    legs = (outbound,) if inbound is None else (outbound, inbound)
    if any(leg.seats(cabin) <= 0 for leg in legs):
        return None
    if inbound is not None and not connects(outbound, inbound):
        return None
    parts = [outbound.origin, outbound.destination, _day(outbound.day), outbound.flight_number]
    if inbound is not None:
        parts += [_day(inbound.day), inbound.flight_number]
    parts += [cabin, family, str(passengers)]
    fare = money(sum(leg.fare(cabin, family) for leg in legs))
    offer = FlightOffer(
        offer_id="fl." + ".".join(parts),
        outbound=_leg(outbound, cabin),
        inbound=None if inbound is None else _leg(inbound, cabin),
        cabin=cabin,
        fare_family=family,
        fare=fare,
        passengers=passengers,
        total_price=money(fare * passengers),
        refundable=family == "flex",
    )
    return Priced(offer, tuple(_seat_need(leg, cabin, passengers) for leg in legs))


def _decode_flight(catalog: SupplierCatalog, parts: list[str]) -> Priced | None:
    if len(parts) not in (7, 9):
        return None
    origin, destination, day, number = parts[:4]
    cabin, family, passengers = parts[-3:]
    if cabin not in get_args(SeatingClass) or family not in get_args(FareFamily):
        return None
    outbound = catalog.flight(origin, destination, _parse_day(day), number)
    inbound = None
    if len(parts) == 9:
        inbound = catalog.flight(destination, origin, _parse_day(parts[4]), parts[5])
        if inbound is None:
            return None
    if outbound is None or not 1 <= int(passengers) <= MAX_PARTY:
        return None
    return flight_offer(outbound, inbound, cabin, family, int(passengers))  # type: ignore[arg-type]


# --- hotels ----------------------------------------------------------------------------------


def hotel_offer(hotel: Hotel, check_in: date, check_out: date, rooms: int) -> Priced:
    nights = (check_out - check_in).days
    offer = HotelOffer(
        offer_id=f"ht.{hotel.hotel_id}.{_day(check_in)}.{_day(check_out)}.{rooms}",
        hotel_id=hotel.hotel_id,
        name=hotel.name,
        city=hotel.city.name,
        iata=hotel.city.iata,
        stars=hotel.stars,
        review_rating=hotel.review_rating,
        check_in=check_in,
        check_out=check_out,
        nights=nights,
        rooms=rooms,
        nightly_rate=hotel.nightly_rate,
        total_price=money(hotel.nightly_rate * nights * rooms),
        wifi=hotel.wifi,
        pets_allowed=hotel.pets_allowed,
    )
    needs = tuple(
        Need(
            f"room:{hotel.hotel_id}:{(check_in + timedelta(n)).isoformat()}",
            hotel.rooms_per_night,
            rooms,
        )
        for n in range(nights)
    )
    return Priced(offer, needs)


def _decode_hotel(catalog: SupplierCatalog, parts: list[str]) -> Priced | None:
    if len(parts) != 4:
        return None
    hotel = catalog.hotel(parts[0])
    check_in, check_out, rooms = _parse_day(parts[1]), _parse_day(parts[2]), int(parts[3])
    if hotel is None or not 1 <= rooms <= MAX_PARTY:
        return None
    if not 1 <= (check_out - check_in).days <= MAX_STAY_NIGHTS:
        return None
    return hotel_offer(hotel, check_in, check_out, rooms)


# --- cars ------------------------------------------------------------------------------------


def rental_days(pickup: date, dropoff: date) -> int:
    """Whole days charged: a same-day return is one day."""
    return max(1, (dropoff - pickup).days)


def car_offer(car: CarClass, pickup_date: date, pickup_time: time, dropoff: date) -> Priced:
    days = rental_days(pickup_date, dropoff)
    pickup_at = datetime.combine(pickup_date, pickup_time, tzinfo=ZoneInfo(car.city.tz))
    slug = city_slug(car.city)
    stamp = f"{_day(pickup_date)}T{pickup_time.strftime('%H%M')}"
    offer = CarOffer(
        offer_id=f"car.{slug}.{car.desk}.{car.car_type}.{stamp}.{_day(dropoff)}",
        city=car.city.name,
        iata=car.city.iata,
        location=car.location,
        desk=car.desk,
        car_type=car.car_type,
        car_name=car.car_name,
        pickup_at=pickup_at,
        dropoff_date=dropoff,
        days=days,
        daily_rate=car.daily_rate,
        total_price=money(car.daily_rate * days),
    )
    needs = tuple(
        Need(
            f"car:{slug}:{car.desk}:{car.car_type}:{(pickup_date + timedelta(n)).isoformat()}",
            car.per_day,
            1,
        )
        for n in range(days)
    )
    return Priced(offer, needs)


def _decode_car(catalog: SupplierCatalog, parts: list[str]) -> Priced | None:
    if len(parts) != 5:
        return None
    slug, desk, car_type, stamp, dropoff_text = parts
    city = catalog.city_by_slug(slug)
    if city is None or desk not in get_args(CarDesk) or car_type not in get_args(CarType):
        return None
    car = catalog.car(city, desk, car_type)
    pickup = datetime.strptime(stamp, "%Y%m%dT%H%M")
    dropoff = _parse_day(dropoff_text)
    if car is None or not 0 <= (dropoff - pickup.date()).days <= MAX_RENTAL_DAYS:
        return None
    return car_offer(car, pickup.date(), pickup.time(), dropoff)


# --- insurance -------------------------------------------------------------------------------


def insurance_offer(
    coverage: Coverage, start: date, end: date, travelers: int, trip_cost: float
) -> Priced:
    plan = PLANS[coverage]
    days = (end - start).days + 1
    cents = round(trip_cost * 100)
    premium = plan.premium(cents / 100, days, travelers)
    offer = InsuranceOffer(
        offer_id=f"ins.{coverage}.{_day(start)}.{_day(end)}.{travelers}.{cents}",
        coverage=coverage,
        travelers=travelers,
        trip_start=start,
        trip_end=end,
        trip_cost=cents / 100,
        medical_limit=plan.medical_limit,
        cancellation_limit=money(cents / 100 * plan.cancellation_share),
        premium=premium,
        total_price=premium,
    )
    return Priced(offer, ())


def _decode_insurance(parts: list[str]) -> Priced | None:
    if len(parts) != 5 or parts[0] not in get_args(Coverage):
        return None
    start, end = _parse_day(parts[1]), _parse_day(parts[2])
    travelers, cents = int(parts[3]), int(parts[4])
    if not 0 <= (end - start).days < MAX_TRIP_DAYS or not 1 <= travelers <= MAX_PARTY:
        return None
    if cents < 0:
        return None
    return insurance_offer(parts[0], start, end, travelers, cents / 100)  # type: ignore[arg-type]


# --- ids -------------------------------------------------------------------------------------


def decode(catalog: SupplierCatalog, offer_id: str) -> Priced | None:
    """Rebuild the offer an id names, or None when the id names nothing the catalog has."""
    prefix, _, rest = offer_id.partition(".")
    parts = rest.split(".")
    try:
        if prefix == "fl":
            return _decode_flight(catalog, parts)
        if prefix == "ht":
            return _decode_hotel(catalog, parts)
        if prefix == "car":
            return _decode_car(catalog, parts)
        if prefix == "ins":
            return _decode_insurance(parts)
    except ValueError:  # a date or number that does not parse: the id names nothing
        return None
    return None
