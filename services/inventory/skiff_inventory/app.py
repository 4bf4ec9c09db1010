"""The inventory's edge: one core request/reply subscriber per domain and operation.

Handlers only translate: parse the request with pydantic, call the service, answer the
reply's JSON. Unparseable or schema-invalid input is answered `invalid_request` with its
problems; an unexpected error is answered `unavailable` — a requester is never left to time
out on a message the service received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.inventory import (
    INVENTORY_OPERATIONS,
    BookingConfirmed,
    ConfirmHold,
    HoldPlaced,
    HoldReleased,
    InventoryFailed,
    InventoryOperation,
    OffersFound,
    PlaceHold,
    ReleaseHold,
    SearchOffers,
)
from skiff_contracts.problems import validation_problems
from skiff_inventory.holds import failed
from skiff_inventory.service import Inventory, invalid_request
from skiff_inventory.settings import InventorySettings
from skiff_runtime.broker import make_broker

log = structlog.get_logger()

Reply = OffersFound | HoldPlaced | BookingConfirmed | HoldReleased | InventoryFailed


async def answer(
    inventory: Inventory, domain: Domain, op: InventoryOperation, body: bytes
) -> Reply:
    """Parse one request body for `op` and run it; bad input is a typed reply, not an error."""
    try:
        if op == "search":
            return await inventory.search(domain, SearchOffers.model_validate_json(body))
        if op == "hold":
            return await inventory.hold(domain, PlaceHold.model_validate_json(body))
        if op == "confirm":
            return await inventory.confirm(domain, ConfirmHold.model_validate_json(body))
        return await inventory.release(domain, ReleaseHold.model_validate_json(body))
    except ValidationError as error:
        return invalid_request(f"not a valid {op} request", validation_problems(error))


def _handler(
    inventory: Inventory, domain: Domain, op: InventoryOperation
) -> Callable[[NatsMessage], Awaitable[bytes]]:
    async def handle(message: NatsMessage) -> bytes:
        try:
            reply = await answer(inventory, domain, op, message.body)
        except Exception as error:  # answer anyway: a silent drop looks like a timeout
            log.exception("inventory call failed", domain=domain, op=op, error=repr(error))
            reply = failed("unavailable", "the supplier failed unexpectedly; retry")
        if isinstance(reply, InventoryFailed):
            log.info("inventory refused", domain=domain, op=op, code=reply.code)
        return reply.model_dump_json().encode()

    handle.__name__ = f"on_{domain}_{op}"
    return handle


def create_app(settings: InventorySettings, inventory: Inventory) -> tuple[FastStream, NatsBroker]:
    broker = make_broker(settings, "inventory")
    for domain in DOMAINS:
        for op in INVENTORY_OPERATIONS:
            broker.subscriber(subjects.inventory(domain, op), queue=subjects.INVENTORY_QUEUE)(
                _handler(inventory, domain, op)
            )

    sweeper: list[asyncio.Task[None]] = []

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(settings.sweep_interval_s)
            try:
                await inventory.sweep()
            except Exception as error:  # the sweeper must outlive one failed transaction
                log.exception("sweep failed", error=repr(error))

    async def start() -> None:
        sweeper.append(asyncio.create_task(sweep_forever()))
        log.info("inventory ready", seed=inventory.catalog.seed)

    async def stop() -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastStream(broker, after_startup=[start], on_shutdown=[stop])
    return app, broker
