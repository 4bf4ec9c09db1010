"""The supplier's seeded catalog, built on the travel city catalog so grounding and stock agree.

* **Airports**: every code a catalog city lists or is served by; flights run between any two
  airports of different cities, on any date (see `flights`).
* **Hotels**: four to seven per city, stars 1–5, a review rating, rooms per night, a
  nightly rate per room, wifi and pets flags.
* **Cars**: three desks per city (its airport, the central station, downtown), each with
  some of the car classes, a count of cars per day and a daily rate.
* **Insurance**: three plans priced from trip cost, days and travelers (no stock).

Everything is drawn from `seeding.seeded(seed, ...)`: the same seed is the same catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from skiff_contracts.domains import CarType, Coverage
from skiff_contracts.inventory import CarDesk
from skiff_inventory.flights import Flight, flights_on
from skiff_inventory.seeding import money, seeded
from skiff_travel.catalog import Catalog, City, default_catalog
from skiff_travel.text import normalize_key

_BRANDS: dict[int, tuple[str, ...]] = {
    1: ("Wayfarer Hostel", "Roadside Inn", "Backpackers Lodge"),
    2: ("Travelstop Inn", "Comfort Stay", "Metro Budget Hotel"),
    3: ("Parkview Hotel", "Harbor Suites", "Cityline Hotel", "Garden Court Hotel"),
    4: ("Meridian Grand", "Royal Crest Hotel", "The Linden", "Bayside Plaza"),
    5: ("The Grand Palace", "Belvedere Residences", "Aurora Collection"),
}
_DISTRICTS = ("Downtown", "Old Town", "Riverside", "Central", "Airport", "Waterfront")
_NIGHTLY_BASE = {1: 55.0, 2: 80.0, 3: 120.0, 4: 185.0, 5: 310.0}

CAR_DESKS: tuple[CarDesk, ...] = ("airport", "station", "downtown")
# Every desk rents these; the others only where the seed says so.
_CORE_CARS: tuple[CarType, ...] = ("economy", "compact", "standard")
_CARS: dict[CarType, tuple[float, tuple[str, ...]]] = {
    "economy": (32.0, ("Chevrolet Spark", "Mitsubishi Mirage", "Kia Rio")),
    "compact": (38.0, ("Toyota Corolla", "Ford Focus", "Nissan Versa")),
    "hatchback": (36.0, ("Volkswagen Golf", "Honda Fit", "Mazda 3")),
    "standard": (45.0, ("Volkswagen Jetta", "Hyundai Elantra", "Kia Forte")),
    "sedan": (48.0, ("Honda Accord", "Hyundai Sonata", "Toyota Camry")),
    "full_size": (54.0, ("Chevrolet Malibu", "Nissan Altima", "Ford Fusion")),
    "suv": (66.0, ("Toyota RAV4", "Ford Explorer", "Jeep Cherokee")),
    "minivan": (78.0, ("Chrysler Pacifica", "Toyota Sienna", "Honda Odyssey")),
    "luxury": (125.0, ("BMW 5 Series", "Mercedes-Benz E-Class", "Audi A6")),
}


@dataclass(frozen=True)
class Hotel:
    hotel_id: str
    name: str
    city: City
    stars: int
    review_rating: float
    rooms_per_night: int
    nightly_rate: float
    wifi: bool
    pets_allowed: bool


@dataclass(frozen=True)
class CarClass:
    """One car class at one desk: `per_day` cars can be out on any one day."""

    city: City
    desk: CarDesk
    location: str
    car_type: CarType
    car_name: str
    per_day: int
    daily_rate: float


@dataclass(frozen=True)
class Plan:
    coverage: Coverage
    rate: float  # share of the trip cost
    per_traveler_day: float
    minimum: float
    medical_limit: float
    cancellation_share: float  # of the trip cost

    def premium(self, trip_cost: float, days: int, travelers: int) -> float:
        return money(
            max(self.minimum, trip_cost * self.rate + self.per_traveler_day * days * travelers)
        )


PLANS: Mapping[Coverage, Plan] = {
    "basic": Plan("basic", 0.035, 1.5, 19.0, 50_000.0, 0.5),
    "standard": Plan("standard", 0.055, 2.5, 29.0, 250_000.0, 1.0),
    "premium": Plan("premium", 0.085, 4.0, 49.0, 1_000_000.0, 1.5),
}


def city_slug(city: City) -> str:
    """A stable, unique, readable id for a city: "springfield-il-us"."""
    parts = (city.name, city.region, city.country)
    return "-".join(normalize_key(part).replace(" ", "-") for part in parts if part)


def desk_location(city: City, desk: CarDesk) -> str:
    if desk == "airport":
        return f"{city.name} {city.iata} Airport"
    if desk == "station":
        return f"{city.name} Central Station"
    return f"Downtown {city.name}"


class SupplierCatalog:
    """The seeded catalog: look-ups by airport, city, hotel id and car desk."""

    def __init__(self, seed: int, cities: Catalog | None = None) -> None:
        self.seed = seed
        self.cities = cities if cities is not None else default_catalog()
        self._slugs = {city_slug(city): city for city in self.cities}
        self._hotels: dict[str, tuple[Hotel, ...]] = {}
        self._cars: dict[str, tuple[CarClass, ...]] = {}

    # --- places -------------------------------------------------------------------------------

    @cached_property
    def airports(self) -> frozenset[str]:
        """Every airport code flights run from: the cities' own airports and serving ones."""
        codes: set[str] = set()
        for city in self.cities:
            codes.update(city.airports)
            codes.add(city.iata)
        return frozenset(codes)

    def airport_city(self, code: str) -> City | None:
        """The city whose airport `code` is (its coordinates and time zone are the airport's)."""
        code = code.strip().upper()
        return self.cities.by_iata(code) if code in self.airports else None

    def city(self, name: str | None, iata: str | None) -> City | None:
        """The one city a grounded (name, IATA) pair means; None when unknown or ambiguous.

        The name decides and the code only tells same-name cities apart (a grounded request
        may carry a neighbour's airport: Anaheim is served by SNA); without a code a shared
        name is its primary city, as in grounding. With no name, the code's own city.
        """
        code = iata.strip().upper() if iata else None
        if name:
            candidates = self.cities.by_name(name)
            if len(candidates) > 1 and code:
                candidates = tuple(c for c in candidates if code in (c.iata, *c.airports))
            if len(candidates) > 1:  # as grounding does: a shared name means its primary city
                candidates = tuple(c for c in candidates if c.primary)
            return candidates[0] if len(candidates) == 1 else None
        return self.airport_city(code) if code else None

    def city_by_slug(self, slug: str) -> City | None:
        return self._slugs.get(slug)

    # --- flights ------------------------------------------------------------------------------

    def flights(self, origin: str, destination: str, day: date) -> tuple[Flight, ...]:
        """Departures between two airports on a day; none for unknown or same-city airports."""
        origin_city, destination_city = self.airport_city(origin), self.airport_city(destination)
        if origin_city is None or destination_city is None or origin_city == destination_city:
            return ()
        return flights_on(
            self.seed, origin_city, origin.upper(), destination_city, destination.upper(), day
        )

    def flight(self, origin: str, destination: str, day: date, number: str) -> Flight | None:
        return next(
            (f for f in self.flights(origin, destination, day) if f.flight_number == number), None
        )

    # --- hotels -------------------------------------------------------------------------------

    def hotels(self, city: City) -> tuple[Hotel, ...]:
        slug = city_slug(city)
        if slug not in self._hotels:
            self._hotels[slug] = self._build_hotels(city, slug)
        return self._hotels[slug]

    def hotel(self, hotel_id: str) -> Hotel | None:
        slug, _, _ = hotel_id.rpartition("-h")
        city = self.city_by_slug(slug)
        if city is None:
            return None
        return next((h for h in self.hotels(city) if h.hotel_id == hotel_id), None)

    def _build_hotels(self, city: City, slug: str) -> tuple[Hotel, ...]:
        rng = seeded(self.seed, "hotels", slug)
        city_factor = seeded(self.seed, "prices", slug).uniform(0.75, 1.6)
        hotels = []
        used: set[str] = set()
        for index in range(rng.randint(4, 7)):
            stars = rng.choices((1, 2, 3, 4, 5), weights=(1, 2, 3, 3, 2))[0]
            brand = rng.choice(_BRANDS[stars])
            name = f"{brand} {city.name}"
            if name in used:
                name = f"{name} {rng.choice(_DISTRICTS)}"
            while name in used:  # two districts drawn alike: number it, names stay unique
                name = f"{brand} {city.name} {len(used) + 1}"
            used.add(name)
            review = min(5.0, max(2.0, rng.gauss(3.1 + 0.3 * stars, 0.3)))
            hotels.append(
                Hotel(
                    hotel_id=f"{slug}-h{index + 1}",
                    name=name,
                    city=city,
                    stars=stars,
                    review_rating=round(review, 1),
                    rooms_per_night=rng.randint(4, 30),
                    nightly_rate=money(_NIGHTLY_BASE[stars] * city_factor * rng.uniform(0.85, 1.2)),
                    wifi=stars >= 3 or rng.random() < 0.7,
                    pets_allowed=rng.random() < 0.35,
                )
            )
        return tuple(hotels)

    # --- cars ---------------------------------------------------------------------------------

    def cars(self, city: City) -> tuple[CarClass, ...]:
        slug = city_slug(city)
        if slug not in self._cars:
            self._cars[slug] = self._build_cars(city, slug)
        return self._cars[slug]

    def car(self, city: City, desk: str, car_type: str) -> CarClass | None:
        return next((c for c in self.cars(city) if c.desk == desk and c.car_type == car_type), None)

    def _build_cars(self, city: City, slug: str) -> tuple[CarClass, ...]:
        rng = seeded(self.seed, "cars", slug)
        city_factor = seeded(self.seed, "prices", slug).uniform(0.75, 1.6)
        models = {car_type: rng.choice(names) for car_type, (_, names) in _CARS.items()}
        fleet = []
        for desk in CAR_DESKS:
            big = desk == "airport"
            for car_type, (base, _) in _CARS.items():
                if car_type not in _CORE_CARS and rng.random() > (0.7 if big else 0.4):
                    continue
                fleet.append(
                    CarClass(
                        city=city,
                        desk=desk,
                        location=desk_location(city, desk),
                        car_type=car_type,
                        car_name=models[car_type],
                        per_day=rng.randint(4, 14) if big else rng.randint(2, 8),
                        daily_rate=money(
                            base
                            * (0.8 + 0.2 * city_factor)
                            * (1.1 if big else 1.0)
                            * rng.uniform(0.9, 1.1)
                        ),
                    )
                )
        return tuple(fleet)
