"""Inventory holds on a real SQLite file: idempotency, finite stock, expiry, restarts, knobs."""

from __future__ import annotations

import asyncio
import time as wallclock
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from skiff_contracts.domains import (
    CarsRequest,
    DomainRequest,
    FlightsRequest,
    HotelsRequest,
    InsuranceRequest,
)
from skiff_contracts.inventory import (
    BookingConfirmed,
    ConfirmHold,
    HoldPlaced,
    HoldReleased,
    HotelOffer,
    InventoryFailed,
    OffersFound,
    PlaceHold,
    ReleaseHold,
    SearchOffers,
)
from skiff_inventory.catalog import SupplierCatalog
from skiff_inventory.faults import Faults
from skiff_inventory.offers import Need, decode
from skiff_inventory.ports import Ledger, Stock
from skiff_inventory.service import Inventory
from skiff_inventory.store import SqliteStore

SEED = 7
DAY = date(2026, 5, 1)
T = TypeVar("T")


@dataclass
class Clock:
    now: datetime = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Harness:
    path: Path
    clock: Clock
    catalog: SupplierCatalog
    store: SqliteStore
    inventory: Inventory

    async def read(self, query: Callable[[Ledger], T]) -> T:
        return await self.store.run(query)

    async def stock(self, resource: str) -> Stock | None:
        return await self.read(lambda ledger: ledger.stock(resource))


def open_harness(path: Path, clock: Clock, faults: Faults | None = None) -> Harness:
    catalog = SupplierCatalog(SEED)
    store = SqliteStore(path, catalog_seed=SEED)
    inventory = Inventory(catalog, store, hold_ttl_s=60, faults=faults, clock=clock)
    return Harness(path, clock, catalog, store, inventory)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    opened = open_harness(tmp_path / "inventory.sqlite3", Clock())
    yield opened
    await opened.store.close()


def car_request(**fields: Any) -> CarsRequest:
    base = {"pickup_city": "Anaheim", "pickup_city_iata": "SNA", "pickup_date": DAY}
    return CarsRequest.model_validate(base | fields)


async def offers(inventory: Inventory, params: DomainRequest, limit: int = 20) -> OffersFound:
    reply = await inventory.search(
        params.domain, SearchOffers(domain=params.domain, params=params, limit=limit)
    )
    assert isinstance(reply, OffersFound), reply
    return reply


async def a_car_offer_id(inventory: Inventory) -> str:
    """The scarcest car class at Anaheim's airport desk, for one day."""
    found = await offers(inventory, car_request(pickup_location="airport"))
    return min(
        (o.offer_id for o in found.offers),
        key=lambda offer_id: decode(inventory.catalog, offer_id).needs[0].capacity,  # type: ignore[union-attr]
    )


def needs_of(harness: Harness, offer_id: str) -> tuple[Need, ...]:
    priced = decode(harness.catalog, offer_id)
    assert priced is not None
    return priced.needs


async def place(
    harness: Harness, key: str, offer_id: str, domain: Any = "cars", **kw: Any
) -> HoldPlaced:
    reply = await harness.inventory.hold(
        domain, PlaceHold(idempotency_key=key, offer_id=offer_id, **kw)
    )
    assert isinstance(reply, HoldPlaced), reply
    return reply


async def unbalanced(harness: Harness) -> list[str]:
    return await harness.read(lambda ledger: ledger.unbalanced())


# --- the happy path and idempotency ------------------------------------------------------------


async def test_search_hold_confirm_release_round_trip(harness: Harness) -> None:
    inventory = harness.inventory
    request = FlightsRequest(
        origin_iata="JFK", destination_iata="LAX", departure_date=DAY, passengers=2
    )
    offer = (await offers(inventory, request)).offers[0]
    held = await place(harness, "k-hold", offer.offer_id, "flights")
    assert held.offer == offer
    assert held.expires_at == harness.clock.now + timedelta(seconds=60)
    (seat, *_) = needs_of(harness, offer.offer_id)
    assert await harness.stock(seat.resource) == Stock(seat.resource, seat.capacity, 2, 0)

    booked = await inventory.confirm(
        "flights", ConfirmHold(idempotency_key="k-confirm", hold_id=held.hold_id)
    )
    assert isinstance(booked, BookingConfirmed)
    assert booked.total_price == offer.total_price
    assert booked.offer_id == offer.offer_id
    assert await harness.stock(seat.resource) == Stock(seat.resource, seat.capacity, 0, 2)

    again = await inventory.confirm(
        "flights", ConfirmHold(idempotency_key="k-confirm", hold_id=held.hold_id)
    )
    assert again == booked
    other_key = await inventory.confirm(
        "flights", ConfirmHold(idempotency_key="k-2", hold_id=held.hold_id)
    )
    assert other_key == booked  # the hold is booked once, whoever asks
    assert await harness.read(lambda ledger: ledger.confirm_calls("k-confirm")) == 2
    assert await harness.stock(seat.resource) == Stock(seat.resource, seat.capacity, 0, 2)

    released = await inventory.release(
        "flights", ReleaseHold(idempotency_key="k-rel", hold_id=held.hold_id)
    )
    assert released == HoldReleased(hold_id=held.hold_id, already=False)  # a cancellation
    assert await harness.stock(seat.resource) == Stock(seat.resource, seat.capacity, 0, 0)
    assert await unbalanced(harness) == []


async def test_a_repeated_hold_returns_the_first_and_takes_stock_once(harness: Harness) -> None:
    offer_id = await a_car_offer_id(harness.inventory)
    first = await place(harness, "same", offer_id)
    harness.clock.advance(5)
    assert await place(harness, "same", offer_id) == first
    (need,) = needs_of(harness, offer_id)
    stock = await harness.stock(need.resource)
    assert stock is not None
    assert stock.held == 1


async def test_a_hold_key_names_the_intent_so_another_offer_gets_the_first_hold(
    harness: Harness,
) -> None:
    found = await offers(harness.inventory, car_request())
    first, second = found.offers[0].offer_id, found.offers[1].offer_id
    placed = await place(harness, "reused", first)
    again = await harness.inventory.hold(
        "cars", PlaceHold(idempotency_key="reused", offer_id=second)
    )
    assert again == placed
    assert await unbalanced(harness) == []


async def test_a_confirm_key_reused_for_another_hold_is_refused(harness: Harness) -> None:
    found = await offers(harness.inventory, car_request())
    one = await place(harness, "h1", found.offers[0].offer_id)
    two = await place(harness, "h2", found.offers[1].offer_id)
    await harness.inventory.confirm("cars", ConfirmHold(idempotency_key="c", hold_id=one.hold_id))
    reply = await harness.inventory.confirm(
        "cars", ConfirmHold(idempotency_key="c", hold_id=two.hold_id)
    )
    assert isinstance(reply, InventoryFailed)
    assert (reply.code, reply.retryable) == ("invalid_request", False)


async def test_releasing_by_key_before_the_hold_arrives_spends_the_key(harness: Harness) -> None:
    offer_id = await a_car_offer_id(harness.inventory)
    released = await harness.inventory.release(
        "cars", ReleaseHold(idempotency_key="undo-early", hold_key="early")
    )
    assert isinstance(released, HoldReleased) and released.already
    late = await harness.inventory.hold(
        "cars", PlaceHold(idempotency_key="early", offer_id=offer_id)
    )
    assert isinstance(late, InventoryFailed) and late.code == "hold_released"
    assert await unbalanced(harness) == []


async def test_releasing_by_key_releases_the_placed_hold(harness: Harness) -> None:
    offer_id = await a_car_offer_id(harness.inventory)
    placed = await place(harness, "k", offer_id)
    released = await harness.inventory.release(
        "cars", ReleaseHold(idempotency_key="undo-k", hold_key="k")
    )
    assert released == HoldReleased(hold_id=placed.hold_id, already=False)
    (need,) = needs_of(harness, offer_id)
    stock = await harness.stock(need.resource)
    assert stock is not None and stock.held == 0


async def test_holds_of_unknown_or_foreign_offers_are_refused(harness: Harness) -> None:
    inventory = harness.inventory
    unknown = await inventory.hold("cars", PlaceHold(idempotency_key="a", offer_id="car.nowhere"))
    assert isinstance(unknown, InventoryFailed)
    assert unknown.code == "not_found"
    car = await a_car_offer_id(inventory)
    foreign = await inventory.hold("hotels", PlaceHold(idempotency_key="b", offer_id=car))
    assert isinstance(foreign, InventoryFailed)
    assert foreign.code == "invalid_request"
    held = await place(harness, "c", car)
    wrong = await inventory.confirm(
        "hotels", ConfirmHold(idempotency_key="d", hold_id=held.hold_id)
    )
    assert isinstance(wrong, InventoryFailed)
    assert wrong.code == "not_found"
    missing = await inventory.release("cars", ReleaseHold(idempotency_key="e", hold_id="hold-x"))
    assert isinstance(missing, InventoryFailed)
    assert missing.code == "not_found"


async def test_a_search_for_another_domain_is_refused(harness: Harness) -> None:
    request = SearchOffers(domain="cars", params=car_request())
    reply = await harness.inventory.search("hotels", request)
    assert isinstance(reply, InventoryFailed)
    assert reply.code == "invalid_request"


async def test_unsearchable_requests_reply_invalid_request_with_problems(harness: Harness) -> None:
    request = HotelsRequest(location_iata="XXX")
    reply = await harness.inventory.search("hotels", SearchOffers(domain="hotels", params=request))
    assert isinstance(reply, InventoryFailed)
    assert reply.code == "invalid_request"
    assert {p.field for p in reply.errors} == {"location", "check_in_date"}


# --- finite stock ------------------------------------------------------------------------------


async def test_stock_runs_out_and_comes_back_on_release(harness: Harness) -> None:
    inventory = harness.inventory
    offer_id = await a_car_offer_id(inventory)
    (need,) = needs_of(harness, offer_id)
    held = [await place(harness, f"h{i}", offer_id) for i in range(need.capacity)]
    refused = await inventory.hold("cars", PlaceHold(idempotency_key="one-more", offer_id=offer_id))
    assert isinstance(refused, InventoryFailed)
    assert (refused.code, refused.retryable) == ("sold_out", False)
    listed = await offers(inventory, car_request(pickup_location="airport"), limit=100)
    assert offer_id not in {o.offer_id for o in listed.offers}

    release = ReleaseHold(idempotency_key="r0", hold_id=held[0].hold_id)
    assert await inventory.release("cars", release) == HoldReleased(
        hold_id=held[0].hold_id, already=False
    )
    assert await inventory.release("cars", release) == HoldReleased(
        hold_id=held[0].hold_id, already=False
    )
    again = await inventory.release(
        "cars", ReleaseHold(idempotency_key="r1", hold_id=held[0].hold_id)
    )
    assert again == HoldReleased(hold_id=held[0].hold_id, already=True)
    assert await place(harness, "one-more", offer_id)  # the retried key now succeeds
    assert await harness.stock(need.resource) == Stock(
        need.resource, need.capacity, need.capacity, 0
    )
    assert await unbalanced(harness) == []


async def test_a_multi_night_stay_needs_every_night(harness: Harness) -> None:
    inventory = harness.inventory
    request = HotelsRequest(location="Paris", location_iata="CDG", check_in_date=DAY, nights=3)
    stay = (await offers(inventory, request)).offers[0]
    night = needs_of(harness, stay.offer_id)[1]  # the middle night
    one_night = HotelsRequest(
        location="Paris", location_iata="CDG", check_in_date=DAY + timedelta(1)
    )
    middle = next(
        o
        for o in (await offers(inventory, one_night)).offers
        if isinstance(o, HotelOffer)
        and isinstance(stay, HotelOffer)
        and o.hotel_id == stay.hotel_id
    )
    for i in range(night.capacity):
        await place(harness, f"n{i}", middle.offer_id, "hotels")
    refused = await inventory.hold(
        "hotels", PlaceHold(idempotency_key="stay", offer_id=stay.offer_id)
    )
    assert isinstance(refused, InventoryFailed)
    assert refused.code == "sold_out"
    first_night = needs_of(harness, stay.offer_id)[0]
    assert await harness.stock(first_night.resource) is None  # nothing was taken
    assert await unbalanced(harness) == []


async def test_concurrent_holds_never_oversell(harness: Harness) -> None:
    offer_id = await a_car_offer_id(harness.inventory)
    (need,) = needs_of(harness, offer_id)
    replies = await asyncio.gather(
        *(
            harness.inventory.hold("cars", PlaceHold(idempotency_key=f"c{i}", offer_id=offer_id))
            for i in range(need.capacity + 5)
        )
    )
    assert sum(isinstance(r, HoldPlaced) for r in replies) == need.capacity
    assert sum(isinstance(r, InventoryFailed) and r.code == "sold_out" for r in replies) == 5


async def test_stock_accounting_is_exact_across_a_mixed_history(harness: Harness) -> None:
    inventory = harness.inventory
    request = FlightsRequest(
        origin_iata="BOS",
        destination_iata="SFO",
        departure_date=DAY,
        return_date=DAY + timedelta(3),
        passengers=3,
    )
    found = (await offers(inventory, request, limit=6)).offers
    holds = [await place(harness, f"m{i}", o.offer_id, "flights") for i, o in enumerate(found)]
    for i, hold in enumerate(holds):
        if i % 3 == 0:
            await inventory.confirm(
                "flights", ConfirmHold(idempotency_key=f"c{i}", hold_id=hold.hold_id)
            )
        if i % 3 == 1:
            await inventory.release(
                "flights", ReleaseHold(idempotency_key=f"r{i}", hold_id=hold.hold_id)
            )
    harness.clock.advance(61)  # the rest expire
    assert await inventory.sweep() == 2
    expected: dict[str, tuple[int, int]] = {}
    for i, offer in enumerate(found):
        for need in needs_of(harness, offer.offer_id):
            held, booked = expected.get(need.resource, (0, 0))
            expected[need.resource] = (held, booked + (need.quantity if i % 3 == 0 else 0))
    for resource, (held, booked) in expected.items():
        stock = await harness.stock(resource)
        assert stock is not None
        assert (stock.held, stock.booked) == (held, booked)
    assert await unbalanced(harness) == []


# --- expiry ------------------------------------------------------------------------------------


async def test_an_expired_hold_returns_its_stock_and_is_never_confirmed(harness: Harness) -> None:
    inventory = harness.inventory
    offer_id = await a_car_offer_id(inventory)
    (need,) = needs_of(harness, offer_id)
    held = await place(harness, "short", offer_id, ttl_s=10)
    harness.clock.advance(10)
    late = await inventory.confirm(
        "cars", ConfirmHold(idempotency_key="late", hold_id=held.hold_id)
    )
    assert isinstance(late, InventoryFailed)
    assert (late.code, late.retryable) == ("hold_expired", False)
    assert await harness.stock(need.resource) == Stock(need.resource, need.capacity, 0, 0)
    again = await inventory.confirm(
        "cars", ConfirmHold(idempotency_key="late", hold_id=held.hold_id)
    )
    assert isinstance(again, InventoryFailed)
    assert again.code == "hold_expired"
    assert await harness.read(lambda ledger: ledger.booking(held.hold_id)) is None
    released = await inventory.release(
        "cars", ReleaseHold(idempotency_key="x", hold_id=held.hold_id)
    )
    assert released == HoldReleased(hold_id=held.hold_id, already=True)


async def test_a_hold_confirmed_in_time_stays_booked(harness: Harness) -> None:
    offer_id = await a_car_offer_id(harness.inventory)
    held = await place(harness, "k", offer_id)
    harness.clock.advance(59)
    booked = await harness.inventory.confirm(
        "cars", ConfirmHold(idempotency_key="c", hold_id=held.hold_id)
    )
    assert isinstance(booked, BookingConfirmed)
    harness.clock.advance(3600)
    assert await harness.inventory.sweep() == 0
    assert (
        await harness.inventory.confirm(
            "cars", ConfirmHold(idempotency_key="c2", hold_id=held.hold_id)
        )
        == booked
    )


async def test_the_sweep_returns_stock_without_any_call(harness: Harness) -> None:
    offer_id = await a_car_offer_id(harness.inventory)
    (need,) = needs_of(harness, offer_id)
    await place(harness, "a", offer_id)
    await place(harness, "b", offer_id, ttl_s=600)
    harness.clock.advance(60)
    assert await harness.inventory.sweep() == 1
    assert await harness.stock(need.resource) == Stock(need.resource, need.capacity, 1, 0)


async def test_confirm_after_release_is_refused(harness: Harness) -> None:
    inventory = harness.inventory
    held = await place(harness, "k", await a_car_offer_id(inventory))
    await inventory.release("cars", ReleaseHold(idempotency_key="r", hold_id=held.hold_id))
    refused = await inventory.confirm(
        "cars", ConfirmHold(idempotency_key="c", hold_id=held.hold_id)
    )
    assert isinstance(refused, InventoryFailed)
    assert refused.code == "hold_released"


# --- persistence -------------------------------------------------------------------------------


async def test_a_restart_keeps_holds_bookings_stock_and_replies(tmp_path: Path) -> None:
    path, clock = tmp_path / "books.sqlite3", Clock()
    first = open_harness(path, clock)
    offer_id = await a_car_offer_id(first.inventory)
    (need,) = needs_of(first, offer_id)
    booked_hold = await place(first, "b", offer_id)
    booked = await first.inventory.confirm(
        "cars", ConfirmHold(idempotency_key="c", hold_id=booked_hold.hold_id)
    )
    live = await place(first, "l", offer_id)
    await first.store.close()

    second = open_harness(path, clock)
    try:
        assert await place(second, "b", offer_id) == booked_hold
        assert (
            await second.inventory.confirm(
                "cars", ConfirmHold(idempotency_key="c", hold_id=booked_hold.hold_id)
            )
            == booked
        )
        assert await second.stock(need.resource) == Stock(need.resource, need.capacity, 1, 1)
        assert await second.read(lambda ledger: ledger.confirm_calls("c")) == 2
        clock.advance(61)
        late = await second.inventory.confirm(
            "cars", ConfirmHold(idempotency_key="z", hold_id=live.hold_id)
        )
        assert isinstance(late, InventoryFailed)
        assert late.code == "hold_expired"
    finally:
        await second.store.close()
    assert path.with_name(path.name + "-wal").exists() or path.exists()


def test_a_store_refuses_a_file_built_with_another_seed(tmp_path: Path) -> None:
    path = tmp_path / "seeded.sqlite3"
    SqliteStore(path, catalog_seed=1)._db.close()
    with pytest.raises(ValueError, match="catalog_seed"):
        SqliteStore(path, catalog_seed=2)


async def test_a_broken_store_answers_unavailable(harness: Harness) -> None:
    harness.store._db.close()
    reply = await harness.inventory.confirm("cars", ConfirmHold(idempotency_key="c", hold_id="h"))
    assert isinstance(reply, InventoryFailed)
    assert (reply.code, reply.retryable) == ("unavailable", True)


# --- test knobs --------------------------------------------------------------------------------


async def test_injected_failures_are_seeded_retryable_and_change_nothing(tmp_path: Path) -> None:
    async def outcomes(name: str) -> list[str]:
        faults = Faults(rate=0.5, ops=frozenset({"hold"}), seed=3)
        opened = open_harness(tmp_path / name, Clock(), faults)
        try:
            offer_id = (
                (await offers(opened.inventory, InsuranceRequest(trip_start=DAY)))
                .offers[0]
                .offer_id
            )
            kinds: list[str] = []
            for i in range(12):
                reply = await opened.inventory.hold(
                    "insurance", PlaceHold(idempotency_key=f"k{i}", offer_id=offer_id)
                )
                if isinstance(reply, InventoryFailed):
                    assert (reply.code, reply.retryable) == ("injected_failure", True)
                kinds.append(reply.kind)
            failed = [f"k{i}" for i, kind in enumerate(kinds) if kind == "inventory_failed"]
            placed = await opened.read(
                lambda ledger: [ledger.stored_reply("hold", key) for key in failed]
            )
            assert placed == [None] * len(failed)
            return kinds
        finally:
            await opened.store.close()

    first, second = await outcomes("a.sqlite3"), await outcomes("b.sqlite3")
    assert first == second
    assert 0 < first.count("inventory_failed") < len(first)


async def test_a_lost_confirm_reply_retried_books_exactly_once(tmp_path: Path) -> None:
    faults = Faults(rate=0.7, ops=frozenset({"confirm"}), phase="after", seed=11)
    opened = open_harness(tmp_path / "lost.sqlite3", Clock(), faults)
    try:
        offer_id = await a_car_offer_id(opened.inventory)
        held = await place(opened, "h", offer_id)
        confirm = ConfirmHold(idempotency_key="retry-me", hold_id=held.hold_id)
        replies = [await opened.inventory.confirm("cars", confirm) for _ in range(10)]
        codes = {r.confirmation_code for r in replies if isinstance(r, BookingConfirmed)}
        assert len(codes) == 1
        assert replies[0].kind == "inventory_failed"  # the first call committed, its reply was lost
        assert await opened.read(lambda ledger: ledger.confirm_calls("retry-me")) == 10
        (need,) = needs_of(opened, offer_id)
        stock = await opened.stock(need.resource)
        assert stock is not None
        assert (stock.held, stock.booked) == (0, 1)
    finally:
        await opened.store.close()


async def test_sold_out_domains_fail_every_hold_there(tmp_path: Path) -> None:
    opened = open_harness(
        tmp_path / "so.sqlite3", Clock(), Faults(sold_out_domains=frozenset({"cars"}))
    )
    try:
        offer_id = (await offers(opened.inventory, car_request())).offers[0].offer_id
        reply = await opened.inventory.hold(
            "cars", PlaceHold(idempotency_key="k", offer_id=offer_id)
        )
        assert isinstance(reply, InventoryFailed)
        assert reply.code == "sold_out"
        insurance = (await offers(opened.inventory, InsuranceRequest(trip_start=DAY))).offers[0]
        assert await place(opened, "i", insurance.offer_id, "insurance")
    finally:
        await opened.store.close()


async def test_latency_is_added_to_every_call(tmp_path: Path) -> None:
    opened = open_harness(tmp_path / "slow.sqlite3", Clock(), Faults(latency_ms=80))
    try:
        started = wallclock.perf_counter()
        await opened.inventory.release("cars", ReleaseHold(idempotency_key="k", hold_id="nothing"))
        assert wallclock.perf_counter() - started >= 0.08
    finally:
        await opened.store.close()
