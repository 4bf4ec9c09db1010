"""Inventory catalog and search: deterministic, built on the travel catalog, filtered, ordered."""

from __future__ import annotations

from datetime import UTC, date, time, timedelta

import pytest

from skiff_contracts.domains import (
    CarsRequest,
    FlightsRequest,
    HotelsRequest,
    InsuranceRequest,
)
from skiff_contracts.inventory import CarOffer, FlightOffer, HotelOffer, InsuranceOffer
from skiff_inventory.catalog import SupplierCatalog, city_slug
from skiff_inventory.offers import Priced, decode
from skiff_inventory.search import Rejected, search
from skiff_travel.catalog import default_catalog

SEED = 7
DAY = date(2026, 5, 1)


@pytest.fixture(scope="module")
def catalog() -> SupplierCatalog:
    return SupplierCatalog(SEED)


def found(catalog: SupplierCatalog, request: object) -> list[Priced]:
    result = search(catalog, request)  # type: ignore[arg-type]
    assert not isinstance(result, Rejected), result
    return result


def problems(catalog: SupplierCatalog, request: object) -> set[tuple[str, str | None]]:
    result = search(catalog, request)  # type: ignore[arg-type]
    assert isinstance(result, Rejected), result
    return {(p.code, p.field) for p in result.problems}


def flights(**fields: object) -> FlightsRequest:
    base: dict[str, object] = {
        "origin": "New York",
        "origin_iata": "JFK",
        "destination": "Chicago",
        "destination_iata": "ORD",
        "departure_date": DAY,
    }
    return FlightsRequest.model_validate(base | fields)


def flight_offers(catalog: SupplierCatalog, request: FlightsRequest) -> list[FlightOffer]:
    offers = [p.offer for p in found(catalog, request)]
    assert all(isinstance(o, FlightOffer) for o in offers)
    return offers  # type: ignore[return-value]


# --- determinism and coverage ------------------------------------------------------------------


def test_the_same_seed_is_the_same_catalog_and_another_seed_is_not() -> None:
    request = flights(return_date=DAY + timedelta(days=4))
    hotels = HotelsRequest(location="Paris", location_iata="CDG", check_in_date=DAY)
    first, again, other = SupplierCatalog(SEED), SupplierCatalog(SEED), SupplierCatalog(SEED + 1)
    assert found(first, request) == found(again, request)
    assert found(first, hotels) == found(again, hotels)
    assert found(first, request) != found(other, request)
    assert found(first, hotels) != found(other, hotels)


def test_every_catalog_city_has_hotels_and_car_desks_and_a_unique_slug(
    catalog: SupplierCatalog,
) -> None:
    cities = default_catalog()
    assert len({city_slug(city) for city in cities}) == len(cities)
    for city in cities:
        assert 4 <= len(catalog.hotels(city)) <= 7
        assert {car.desk for car in catalog.cars(city)} == {"airport", "station", "downtown"}
        assert catalog.airport_city(city.iata) is not None


def test_flights_run_three_to_six_times_a_day_in_local_time(catalog: SupplierCatalog) -> None:
    for offset in range(10):
        day = DAY + timedelta(days=offset)
        departures = catalog.flights("JFK", "LHR", day)
        assert 3 <= len(departures) <= 6
        assert len({f.flight_number for f in departures}) == len(departures)
        for flight in departures:
            assert str(flight.depart_at.tzinfo) == "America/New_York"
            assert str(flight.arrive_at.tzinfo) == "Europe/London"
            assert time(6) <= flight.depart_at.time() <= time(22)
            assert flight.depart_at.date() == day
            elapsed = flight.arrive_at.astimezone(UTC) - flight.depart_at.astimezone(UTC)
            assert elapsed == timedelta(minutes=flight.slot.duration_minutes)


def test_durations_and_fares_grow_with_distance(catalog: SupplierCatalog) -> None:
    def cheapest(destination: str) -> tuple[int, float]:
        nonstop = [f for f in catalog.flights("JFK", destination, DAY) if not f.slot.stops]
        return (
            min(f.slot.duration_minutes for f in nonstop),
            min(f.fare("economy", "basic") for f in nonstop),
        )

    boston, london, sydney = cheapest("BOS"), cheapest("LHR"), cheapest("SYD")
    assert boston[0] < london[0] < sydney[0]
    assert boston[1] < london[1] < sydney[1]


def test_unknown_and_same_city_airports_have_no_flights(catalog: SupplierCatalog) -> None:
    assert catalog.flights("JFK", "XXX", DAY) == ()
    assert catalog.flights("JFK", "LGA", DAY) == ()


def test_every_searched_offer_id_rebuilds_the_same_offer(catalog: SupplierCatalog) -> None:
    requests = [
        flights(return_date=DAY + timedelta(days=3), passengers=2),
        HotelsRequest(location="London", location_iata="LHR", check_in_date=DAY, nights=3),
        CarsRequest(
            pickup_city="Anaheim",
            pickup_city_iata="SNA",
            pickup_date=DAY,
            pickup_time=time(9, 30),
            dropoff_date=DAY + timedelta(days=2),
        ),
        InsuranceRequest(trip_start=DAY, trip_end=DAY + timedelta(days=6), trip_cost=1234.56),
    ]
    for request in requests:
        for priced in found(catalog, request):
            assert decode(catalog, priced.offer.offer_id) == priced


@pytest.mark.parametrize(
    "offer_id",
    [
        "",
        "nope",
        "fl.JFK.ORD.20260501.ZZ9999.economy.basic.1",
        "fl.JFK.ORD.2026-05-01.x.economy.basic.1",
        "fl.JFK.ORD.20260501",
        "ht.paris-fr-h99.20260501.20260502.1",
        "ht.paris-fr-h1.20260502.20260501.1",
        "car.paris-fr.moon.economy.20260501T1000.20260502",
        "ins.gold.20260501.20260502.1.0",
        "ins.basic.20260501.20260502.0.0",
    ],
)
def test_ids_that_name_nothing_decode_to_none(catalog: SupplierCatalog, offer_id: str) -> None:
    assert decode(catalog, offer_id) is None


# --- flights search ---------------------------------------------------------------------------


def test_flight_defaults_one_passenger_one_way_every_cabin_both_fares(
    catalog: SupplierCatalog,
) -> None:
    offers = flight_offers(catalog, flights())
    assert offers
    assert {o.passengers for o in offers} == {1}
    assert all(o.inbound is None for o in offers)
    assert {o.cabin for o in offers} >= {"economy", "business"}
    assert {o.fare_family for o in offers} == {"basic", "flex"}
    assert all(o.refundable == (o.fare_family == "flex") for o in offers)


def test_flights_are_cheapest_first_with_a_total_order(catalog: SupplierCatalog) -> None:
    offers = flight_offers(catalog, flights(return_date=DAY + timedelta(days=2)))
    keys = [(o.total_price, o.outbound.depart_at.astimezone(UTC)) for o in offers]
    assert keys == sorted(keys)
    assert len({o.offer_id for o in offers}) == len(offers)


def test_flight_filters(catalog: SupplierCatalog) -> None:
    every = flight_offers(catalog, flights())
    some_airline = every[0].outbound.airline
    business = flight_offers(catalog, flights(seating_class="business", passengers=3))
    assert business
    assert all(o.cabin == "business" and o.passengers == 3 for o in business)
    assert all(o.total_price == pytest.approx(o.fare * 3) for o in business)
    nonstop = flight_offers(catalog, flights(nonstop=True))
    assert nonstop
    assert all(o.outbound.stops == 0 for o in nonstop)
    refundable = flight_offers(catalog, flights(refundable=True))
    assert refundable
    assert all(o.refundable for o in refundable)
    assert flight_offers(catalog, flights(nonstop=False)) == every  # false wishes nothing
    by_name = flight_offers(catalog, flights(airline=some_airline.split()[0].lower()))
    assert by_name
    assert all(o.outbound.airline == some_airline for o in by_name)
    code = every[0].outbound.flight_number[:2]
    assert flight_offers(catalog, flights(airline=code)) == by_name
    assert flight_offers(catalog, flights(airline="Nonexistent Air")) == []


def test_round_trips_return_after_the_outbound_lands(catalog: SupplierCatalog) -> None:
    offers = flight_offers(catalog, flights(return_date=DAY))
    assert offers
    for offer in offers:
        assert offer.inbound is not None
        assert offer.inbound.origin == "ORD"
        assert offer.inbound.destination == "JFK"
        assert offer.inbound.depart_at >= offer.outbound.arrive_at + timedelta(minutes=60)
        assert offer.fare == pytest.approx(offer.total_price / offer.passengers)


def test_a_city_without_its_code_and_a_named_airport_both_search(catalog: SupplierCatalog) -> None:
    by_name = flight_offers(catalog, flights(origin_iata=None, destination_iata=None))
    assert {o.outbound.origin for o in by_name} == {"JFK"}
    by_airport = flight_offers(catalog, flights(origin_iata="LGA"))
    assert {o.outbound.origin for o in by_airport} == {"LGA"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"origin_iata": "XXX"}, ("unknown_airport", "origin_iata")),
        ({"origin": None, "origin_iata": None}, ("missing_field", "origin")),
        ({"destination": "Atlantis", "destination_iata": None}, ("unknown_city", "destination")),
        ({"departure_date": None}, ("missing_field", "departure_date")),
        ({"return_date": DAY - timedelta(days=1)}, ("return_before_departure", "return_date")),
        ({"destination_iata": "LGA"}, ("same_city", "destination")),
    ],
)
def test_impossible_flight_requests_are_rejected_with_problems(
    catalog: SupplierCatalog, fields: dict[str, object], expected: tuple[str, str]
) -> None:
    assert expected in problems(catalog, flights(**fields))


# --- hotels, cars, insurance -----------------------------------------------------------------


def test_hotel_defaults_and_filters(catalog: SupplierCatalog) -> None:
    request = HotelsRequest(location="Paris", location_iata="CDG", check_in_date=DAY)
    every = [p.offer for p in found(catalog, request)]
    assert all(isinstance(o, HotelOffer) for o in every)
    hotels: list[HotelOffer] = every  # type: ignore[assignment]
    assert {(o.nights, o.rooms, o.check_out) for o in hotels} == {(1, 1, DAY + timedelta(1))}
    assert [o.total_price for o in hotels] == sorted(o.total_price for o in hotels)
    assert all(o.total_price == pytest.approx(o.nightly_rate * o.nights * o.rooms) for o in hotels)

    def matching(**fields: object) -> list[HotelOffer]:
        return [p.offer for p in found(catalog, request.model_copy(update=fields))]  # type: ignore[misc]

    assert all(o.stars >= 4 for o in matching(star_rating=4))
    assert all(o.review_rating >= 4.2 for o in matching(review_rating=4.2))
    assert all(o.wifi for o in matching(wifi=True))
    assert all(o.pets_allowed for o in matching(pets_allowed=True))
    assert matching(wifi=False) == hotels
    name = hotels[0].name
    named = [o.name for o in matching(hotel_name=name.upper())]
    assert name in named
    assert all(other.startswith(name) for other in named)
    assert matching(hotel_name="Ritz") == []
    five_guests = matching(guests=5, nights=3)
    assert {(o.rooms, o.nights) for o in five_guests} == {(2, 3)}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"check_in_date": None}, ("missing_field", "check_in_date")),
        ({"check_out_date": DAY}, ("invalid_stay", "check_out_date")),
        ({"nights": 2, "check_out_date": DAY + timedelta(days=3)}, ("nights_mismatch", "nights")),
        ({"guests": 9, "rooms": 2}, ("too_many_guests", "guests")),
        ({"location": "Springfield", "location_iata": None}, ("unknown_city", "location")),
    ],
)
def test_impossible_hotel_requests_are_rejected(
    catalog: SupplierCatalog, fields: dict[str, object], expected: tuple[str, str]
) -> None:
    base = {"location": "Paris", "location_iata": "CDG", "check_in_date": DAY}
    assert expected in problems(catalog, HotelsRequest.model_validate(base | fields))


def test_same_name_cities_are_told_apart_by_their_code(catalog: SupplierCatalog) -> None:
    def city_of(iata: str) -> set[str]:
        request = HotelsRequest(location="Springfield", location_iata=iata, check_in_date=DAY)
        return {p.offer.hotel_id for p in found(catalog, request)}  # type: ignore[union-attr]

    assert all(h.startswith("springfield-il-us") for h in city_of("SPI"))
    assert all(h.startswith("springfield-mo-us") for h in city_of("SGF"))


def test_car_defaults_desks_and_filters(catalog: SupplierCatalog) -> None:
    request = CarsRequest(pickup_city="Anaheim", pickup_city_iata="SNA", pickup_date=DAY)
    cars: list[CarOffer] = [p.offer for p in found(catalog, request)]  # type: ignore[misc]
    assert {(o.days, o.dropoff_date, o.pickup_at.time()) for o in cars} == {
        (1, DAY + timedelta(days=1), time(10))
    }
    assert str(cars[0].pickup_at.tzinfo) == "America/Los_Angeles"
    assert [o.total_price for o in cars] == sorted(o.total_price for o in cars)

    def matching(**fields: object) -> list[CarOffer]:
        return [p.offer for p in found(catalog, request.model_copy(update=fields))]  # type: ignore[misc]

    assert {o.desk for o in matching(pickup_location="John Wayne Airport")} == {"airport"}
    assert {o.desk for o in matching(pickup_location="Anaheim Intermodal Center")} == {"station"}
    assert matching(pickup_location="my cousin's house") == cars
    assert {o.car_type for o in matching(car_type="suv")} == {"suv"}
    week = matching(dropoff_date=DAY + timedelta(days=7))
    assert {o.days for o in week} == {7}
    assert all(o.total_price == pytest.approx(o.daily_rate * 7) for o in week)
    model = cars[0].car_name
    assert {o.car_name for o in matching(car_name=model.lower())} == {model}
    assert problems(catalog, request.model_copy(update={"dropoff_date": DAY - timedelta(1)})) == {
        ("invalid_rental", "dropoff_date")
    }


def test_insurance_plans_are_priced_from_cost_days_and_travelers(catalog: SupplierCatalog) -> None:
    request = InsuranceRequest(trip_start=DAY, trip_end=DAY + timedelta(days=9), trip_cost=3000)
    plans: list[InsuranceOffer] = [p.offer for p in found(catalog, request)]  # type: ignore[misc]
    assert [o.coverage for o in plans] == ["basic", "standard", "premium"]
    assert [o.total_price for o in plans] == sorted(o.total_price for o in plans)
    two = [p.offer for p in found(catalog, request.model_copy(update={"travelers": 2}))]
    dearer = [p.offer for p in found(catalog, request.model_copy(update={"trip_cost": 6000}))]
    for base, more_people, more_cost in zip(plans, two, dearer, strict=True):
        assert more_people.total_price > base.total_price
        assert more_cost.total_price > base.total_price
    defaults: list[InsuranceOffer] = [
        p.offer  # type: ignore[misc]
        for p in found(catalog, InsuranceRequest(trip_start=DAY, coverage="premium"))
    ]
    assert [(o.coverage, o.travelers, o.trip_end, o.trip_cost) for o in defaults] == [
        ("premium", 1, DAY, 0.0)
    ]
    assert defaults[0].total_price == 49.0  # the plan's minimum
    assert problems(catalog, InsuranceRequest()) == {("missing_field", "trip_start")}
