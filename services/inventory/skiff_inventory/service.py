"""The supplier's four operations: contract message in, contract reply out. Never imports NATS.

Every call first waits the configured latency and may be failed by the test knobs; a store
that cannot run a transaction answers `unavailable` (retryable). Nothing here raises for
bad input: problems are replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import structlog

from skiff_contracts.base import utc_now
from skiff_contracts.domains import Domain
from skiff_contracts.inventory import (
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
from skiff_contracts.problems import Problem
from skiff_inventory import holds
from skiff_inventory.catalog import SupplierCatalog
from skiff_inventory.faults import Faults
from skiff_inventory.offers import Priced, decode
from skiff_inventory.ports import Ledger, Store, StoreUnavailableError
from skiff_inventory.search import Rejected, search

log = structlog.get_logger()

R = TypeVar("R", OffersFound, HoldPlaced, BookingConfirmed, HoldReleased)


def invalid_request(message: str, problems: tuple[Problem, ...] = ()) -> InventoryFailed:
    """The reply to input that cannot be served as sent."""
    return InventoryFailed(code="invalid_request", message=message, errors=problems)


class Inventory:
    """The supplier: a seeded catalog, a transactional store, a clock and the test knobs."""

    def __init__(
        self,
        catalog: SupplierCatalog,
        store: Store,
        *,
        hold_ttl_s: float = 900.0,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.hold_ttl_s = hold_ttl_s
        self.faults = faults or Faults()
        self.clock = clock

    def _now(self) -> float:
        return self.clock().timestamp()

    async def _call(
        self, op: InventoryOperation, work: Callable[[], Awaitable[R | InventoryFailed]]
    ) -> R | InventoryFailed:
        await self.faults.delay()
        if self.faults.strikes(op, "before"):
            return holds.failed("injected_failure", f"{op} failed on purpose (test knob)")
        try:
            reply = await work()
        except StoreUnavailableError as error:
            log.warning("store unavailable", op=op, error=str(error))
            return holds.failed("unavailable", "the supplier's store is unavailable; retry")
        if self.faults.strikes(op, "after"):
            return holds.failed("injected_failure", f"{op} reply lost on purpose (test knob)")
        return reply

    # --- operations -------------------------------------------------------------------------

    async def search(self, domain: Domain, request: SearchOffers) -> OffersFound | InventoryFailed:
        """Offers with stock left for the request, in the documented order, at most `limit`."""

        async def work() -> OffersFound | InventoryFailed:
            if request.domain != domain:
                return invalid_request(f"a {request.domain} search sent to {domain}")
            found = await asyncio.to_thread(search, self.catalog, request.params)
            if isinstance(found, Rejected):
                return invalid_request("the request cannot be searched", found.problems)
            now, limit = self._now(), request.limit
            offers = await self.store.run(lambda ledger: _in_stock(ledger, found, limit, now))
            return OffersFound(domain=domain, offers=tuple(p.offer for p in offers))

        return await self._call("search", work)

    async def hold(self, domain: Domain, request: PlaceHold) -> HoldPlaced | InventoryFailed:
        """Hold an offer's stock for `ttl_s` (default: the service's TTL)."""

        async def work() -> HoldPlaced | InventoryFailed:
            priced = decode(self.catalog, request.offer_id)
            ttl_s = request.ttl_s or self.hold_ttl_s
            sold_out = domain in self.faults.sold_out_domains
            now = self._now()
            return await self.store.run(
                lambda ledger: holds.place(
                    ledger, domain, request, priced, ttl_s=ttl_s, now=now, sold_out=sold_out
                )
            )

        return await self._call("hold", work)

    async def confirm(
        self, domain: Domain, request: ConfirmHold
    ) -> BookingConfirmed | InventoryFailed:
        """Book a live hold; never an expired or released one."""

        async def work() -> BookingConfirmed | InventoryFailed:
            now = self._now()
            return await self.store.run(
                lambda ledger: holds.confirm(ledger, domain, request, now=now)
            )

        return await self._call("confirm", work)

    async def release(self, domain: Domain, request: ReleaseHold) -> HoldReleased | InventoryFailed:
        """Give a hold's stock back (cancelling its booking if it was confirmed)."""

        async def work() -> HoldReleased | InventoryFailed:
            now = self._now()
            return await self.store.run(
                lambda ledger: holds.release(ledger, domain, request, now=now)
            )

        return await self._call("release", work)

    async def sweep(self) -> int:
        """Expire every hold past its TTL now, returning its stock; how many expired."""
        now = self._now()
        expired = await self.store.run(lambda ledger: holds.expire_due(ledger, now))
        if expired:
            log.info("holds expired", count=expired)
        return expired


def _in_stock(ledger: Ledger, offers: list[Priced], limit: int, now: float) -> list[Priced]:
    """The first `limit` offers whose every need still has enough free units."""
    holds.expire_due(ledger, now)  # stock of a lapsed hold is free, swept or not
    free = ledger.free(need for priced in offers for need in priced.needs)
    return [
        priced
        for priced in offers
        if all(free[need.resource] >= need.quantity for need in priced.needs)
    ][:limit]
