"""The real inventory app against a real nats-server: request/reply for every operation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.errors import NoRespondersError
from pydantic import BaseModel

from skiff_contracts import subjects
from skiff_contracts.domains import Domain, FlightsRequest
from skiff_contracts.inventory import (
    CONFIRM_REPLY,
    HOLD_REPLY,
    RELEASE_REPLY,
    SEARCH_REPLY,
    BookingConfirmed,
    ConfirmHold,
    FlightOffer,
    HoldPlaced,
    HoldReleased,
    InventoryFailed,
    InventoryOperation,
    OffersFound,
    PlaceHold,
    ReleaseHold,
    SearchOffers,
)
from skiff_inventory.app import create_app
from skiff_inventory.catalog import SupplierCatalog
from skiff_inventory.service import Inventory
from skiff_inventory.settings import InventorySettings
from skiff_inventory.store import SqliteStore
from skiff_runtime.nats_server import NatsServer

pytestmark = pytest.mark.nats


@pytest.fixture
async def inventory_app(
    nats_server: NatsServer, nats_connection: Client, tmp_path: Path
) -> AsyncIterator[Client]:
    settings = InventorySettings(nats_url=nats_server.url, db_path=tmp_path / "inv.sqlite3")
    store = SqliteStore(settings.db_path, catalog_seed=settings.catalog_seed)
    inventory = Inventory(SupplierCatalog(settings.catalog_seed), store, faults=settings.faults())
    _, broker = create_app(settings, inventory)
    await broker.start()
    await broker.connection.flush()
    yield nats_connection
    await broker.stop()
    await store.close()


async def call(
    connection: Client, domain: Domain, op: InventoryOperation, payload: BaseModel | bytes
) -> bytes:
    data = payload if isinstance(payload, bytes) else payload.model_dump_json().encode()
    # Even after a flush of the subscriber's connection, the server now and then answers the
    # first request "no responders" (seen with plain nats-py too); a client retries that.
    for _ in range(50):
        try:
            reply = await connection.request(subjects.inventory(domain, op), data, timeout=10)
        except NoRespondersError:
            await asyncio.sleep(0.02)
            continue
        return bytes(reply.data)
    raise AssertionError(f"nobody answers {subjects.inventory(domain, op)}")


async def test_search_hold_confirm_again_and_release_over_nats(inventory_app: Client) -> None:
    params = FlightsRequest(
        origin="New York",
        origin_iata="JFK",
        destination="Chicago",
        destination_iata="ORD",
        departure_date=date(2026, 5, 1),
        return_date=date(2026, 5, 4),
        passengers=2,
        seating_class="economy",
    )
    search = SearchOffers(domain="flights", params=params, limit=5)
    found = SEARCH_REPLY.validate_json(await call(inventory_app, "flights", "search", search))
    assert isinstance(found, OffersFound)
    assert 0 < len(found.offers) <= 5
    offer = found.offers[0]
    assert isinstance(offer, FlightOffer)
    assert offer.inbound is not None
    assert offer.passengers == 2

    hold = PlaceHold(idempotency_key="trip-1:flights:hold", offer_id=offer.offer_id)
    held = HOLD_REPLY.validate_json(await call(inventory_app, "flights", "hold", hold))
    assert isinstance(held, HoldPlaced)
    assert held.offer == offer

    confirm = ConfirmHold(idempotency_key="trip-1:flights:confirm", hold_id=held.hold_id)
    booked = CONFIRM_REPLY.validate_json(await call(inventory_app, "flights", "confirm", confirm))
    assert isinstance(booked, BookingConfirmed)
    assert booked.total_price == offer.total_price
    again = CONFIRM_REPLY.validate_json(await call(inventory_app, "flights", "confirm", confirm))
    assert again == booked  # same confirmation code: one booking

    release = ReleaseHold(idempotency_key="trip-1:flights:cancel", hold_id=held.hold_id)
    released = RELEASE_REPLY.validate_json(await call(inventory_app, "flights", "release", release))
    assert released == HoldReleased(hold_id=held.hold_id, already=False)
    late = ConfirmHold(idempotency_key="trip-1:flights:confirm-late", hold_id=held.hold_id)
    refused = CONFIRM_REPLY.validate_json(await call(inventory_app, "flights", "confirm", late))
    assert isinstance(refused, InventoryFailed)
    assert refused.code == "hold_released"


@pytest.mark.parametrize(
    ("op", "body"),
    [
        ("hold", b"{not json"),
        ("search", b'{"domain": "flights", "params": {"domain": "flights", "passengers": 0}}'),
        ("confirm", b'{"hold_id": "h"}'),
    ],
)
async def test_malformed_requests_get_a_typed_error_reply(
    inventory_app: Client, op: InventoryOperation, body: bytes
) -> None:
    reply = await call(inventory_app, "flights", op, body)
    failed = InventoryFailed.model_validate_json(reply)
    assert (failed.code, failed.retryable) == ("invalid_request", False)
    assert failed.errors
