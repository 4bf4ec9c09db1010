"""Seeded flight schedules between any two airports of the travel catalog.

A route (origin airport, destination airport) has six scheduled departures, drawn once from
the seed and the route: airline, flight number, local departure time, stops, aircraft (seats
per cabin) and a base fare from the great-circle distance. A given day runs three to six of
them, drawn from the seed, the route and the date, each with that day's demand factor on
its fares. The same seed always gives the same flights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from skiff_contracts.domains import SeatingClass
from skiff_contracts.inventory import FareFamily
from skiff_inventory.seeding import money, seeded
from skiff_travel.catalog import City

SLOTS_PER_ROUTE = 6
MIN_DEPARTURES, MAX_DEPARTURES = 3, 6
CRUISE_KMH = 800.0
CABINS: tuple[SeatingClass, ...] = ("economy", "premium_economy", "business", "first")
CABIN_FACTOR: dict[SeatingClass, float] = {
    "economy": 1.0,
    "premium_economy": 1.65,
    "business": 3.4,
    "first": 5.5,
}
FARE_FAMILY_FACTOR: dict[FareFamily, float] = {"basic": 1.0, "flex": 1.3}


@dataclass(frozen=True)
class Airline:
    name: str
    code: str
    countries: frozenset[str]
    domestic_only: bool = False


def _airline(name: str, code: str, *countries: str, domestic_only: bool = False) -> Airline:
    return Airline(name, code, frozenset(countries), domestic_only)


# Names follow the development data's spelling ("Delta Airlines").
AIRLINES: tuple[Airline, ...] = (
    _airline("Delta Airlines", "DL", "US"),
    _airline("United Airlines", "UA", "US"),
    _airline("American Airlines", "AA", "US"),
    _airline("Southwest Airlines", "WN", "US", domestic_only=True),
    _airline("Alaska Airlines", "AS", "US", "CA", "MX"),
    _airline("JetBlue Airways", "B6", "US", "PR", "DO", "JM"),
    _airline("Air Canada", "AC", "CA"),
    _airline("WestJet", "WS", "CA"),
    _airline("Aeromexico", "AM", "MX"),
    _airline("British Airways", "BA", "GB"),
    _airline("Virgin Atlantic", "VS", "GB"),
    _airline("Air France", "AF", "FR"),
    _airline("Lufthansa", "LH", "DE", "AT", "CH"),
    _airline("KLM", "KL", "NL"),
    _airline("Iberia", "IB", "ES"),
    _airline("ITA Airways", "AZ", "IT"),
    _airline("Aer Lingus", "EI", "IE"),
    _airline("TAP Air Portugal", "TP", "PT", "BR"),
    _airline("Scandinavian Airlines", "SK", "DK", "SE", "NO"),
    _airline("Finnair", "AY", "FI"),
    _airline("LOT Polish Airlines", "LO", "PL"),
    _airline("Turkish Airlines", "TK", "TR"),
    _airline("Emirates", "EK", "AE"),
    _airline("Qatar Airways", "QR", "QA"),
    _airline("Air India", "AI", "IN"),
    _airline("IndiGo", "6E", "IN", domestic_only=True),
    _airline("Air China", "CA", "CN"),
    _airline("China Eastern", "MU", "CN"),
    _airline("Cathay Pacific", "CX", "HK", "MO"),
    _airline("Japan Airlines", "JL", "JP"),
    _airline("ANA", "NH", "JP"),
    _airline("Korean Air", "KE", "KR"),
    _airline("Singapore Airlines", "SQ", "SG"),
    _airline("Thai Airways", "TG", "TH"),
    _airline("Qantas", "QF", "AU"),
    _airline("Air New Zealand", "NZ", "NZ"),
    _airline("LATAM", "LA", "BR", "CL", "PE", "CO", "EC"),
    _airline("Avianca", "AV", "CO", "CR", "EC"),
    _airline("Aerolineas Argentinas", "AR", "AR", "UY"),
    _airline("South African Airways", "SA", "ZA"),
    _airline("Ethiopian Airlines", "ET", "ET", "KE", "GH", "NG", "RW", "TZ"),
)
# Long-haul networks that fill a route no home carrier serves.
GLOBAL_CARRIERS = ("EK", "QR", "TK", "LH")
# Flies domestic routes of countries without a listed home carrier.
LOCAL_CARRIER = Airline("Skiff Air", "SX", frozenset())
_BY_CODE = {airline.code: airline for airline in AIRLINES}


@dataclass(frozen=True)
class Slot:
    """One scheduled departure of a route, the same every day it runs."""

    airline: Airline
    flight_number: str
    departs: time
    stops: int
    duration_minutes: int
    seats: dict[SeatingClass, int]
    base_fare: float  # economy, basic fare family, one passenger


@dataclass(frozen=True)
class Flight:
    """A slot on a given day: local times at both ends and the day's fares."""

    slot: Slot
    origin: str
    destination: str
    day: date
    depart_at: datetime
    arrive_at: datetime
    demand: float

    @property
    def flight_number(self) -> str:
        return self.slot.flight_number

    def seats(self, cabin: SeatingClass) -> int:
        return self.slot.seats.get(cabin, 0)

    def fare(self, cabin: SeatingClass, family: FareFamily) -> float:
        """Price per passenger in one cabin and fare family."""
        factor = CABIN_FACTOR[cabin] * FARE_FAMILY_FACTOR[family]
        return money(self.slot.base_fare * self.demand * factor)


def distance_km(a: City, b: City) -> float:
    """Great-circle distance between two cities (haversine, mean Earth radius)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def carriers(origin: City, destination: City) -> tuple[Airline, ...]:
    """Who flies a route: home carriers of either end, else the global networks."""
    domestic = origin.country == destination.country
    home = tuple(
        airline
        for airline in AIRLINES
        if (origin.country in airline.countries or destination.country in airline.countries)
        and (domestic or not airline.domestic_only)
    )
    if domestic:
        return home or (LOCAL_CARRIER,)
    if len(home) >= 2:
        return home
    return home + tuple(_BY_CODE[code] for code in GLOBAL_CARRIERS if _BY_CODE[code] not in home)


def _seats(distance: float, rng_pick: list[int], long_haul_first: bool) -> dict[SeatingClass, int]:
    economy, premium, business = rng_pick
    if distance < 1500:
        return {"economy": economy, "premium_economy": premium, "business": business}
    if distance < 5000:
        return {"economy": economy + 24, "premium_economy": premium + 12, "business": business + 4}
    seats: dict[SeatingClass, int] = {
        "economy": economy + 96,
        "premium_economy": premium + 20,
        "business": business + 28,
    }
    if long_haul_first:
        seats["first"] = 8
    return seats


def _round5(minutes: float) -> int:
    return max(5, round(minutes / 5.0) * 5)


@lru_cache(maxsize=8192)
def route_slots(
    seed: int, origin: City, origin_code: str, destination: City, destination_code: str
) -> tuple[Slot, ...]:
    """The six scheduled departures of a route, sorted by local departure time."""
    rng = seeded(seed, "route", origin_code, destination_code)
    distance = distance_km(origin, destination)
    fleet = carriers(origin, destination)
    minutes = sorted(rng.sample(range(6 * 12, 22 * 12), SLOTS_PER_ROUTE))
    # Short and medium routes always keep at least one nonstop departure.
    forced_nonstop = rng.randrange(SLOTS_PER_ROUTE) if distance < 9000 else -1
    numbers: set[str] = set()
    slots = []
    for index, minute in enumerate(minutes):
        airline = rng.choice(fleet)
        number = f"{airline.code}{rng.randint(100, 2999)}"
        while number in numbers:
            number = f"{airline.code}{rng.randint(100, 2999)}"
        numbers.add(number)
        nonstop_odds = 0.9 if distance < 3000 else 0.55
        stops = 0 if index == forced_nonstop or rng.random() < nonstop_odds else 1
        duration = 35 + distance / CRUISE_KMH * 60
        if stops:
            duration = duration * 1.1 + rng.randint(60, 150)
        base = (45 + distance * 0.085) * rng.uniform(0.85, 1.2) * (0.85 if stops else 1.0)
        pick = [rng.choice((126, 138, 150)), rng.choice((0, 12)), rng.choice((8, 12, 16))]
        slots.append(
            Slot(
                airline=airline,
                flight_number=number,
                departs=time(minute // 12, minute % 12 * 5),
                stops=stops,
                duration_minutes=_round5(duration),
                seats=_seats(distance, pick, rng.random() < 0.5),
                base_fare=base,
            )
        )
    return tuple(slots)


def flights_on(
    seed: int,
    origin: City,
    origin_code: str,
    destination: City,
    destination_code: str,
    day: date,
) -> tuple[Flight, ...]:
    """The departures of a route on one day, by local departure time."""
    slots = route_slots(seed, origin, origin_code, destination, destination_code)
    rng = seeded(seed, "day", origin_code, destination_code, day.isoformat())
    running = sorted(rng.sample(range(len(slots)), rng.randint(MIN_DEPARTURES, MAX_DEPARTURES)))
    origin_tz, destination_tz = ZoneInfo(origin.tz), ZoneInfo(destination.tz)
    flights = []
    for index in running:
        slot = slots[index]
        depart_at = datetime.combine(day, slot.departs, tzinfo=origin_tz)
        arrive_utc = depart_at.astimezone(UTC) + timedelta(minutes=slot.duration_minutes)
        flights.append(
            Flight(
                slot=slot,
                origin=origin_code,
                destination=destination_code,
                day=day,
                depart_at=depart_at,
                arrive_at=arrive_utc.astimezone(destination_tz),
                demand=rng.uniform(0.9, 1.3),
            )
        )
    return tuple(flights)
