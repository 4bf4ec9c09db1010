"""The worker's logic: one command in, one typed reply out. Never imports NATS.

Extraction calls the model; holds, confirmations and cancellations only call the supplier.

Offer choice for a hold (the documented rule): the supplier returns only offers that meet
every constraint the request states, cheapest first (ties in the supplier's per-domain
order); the worker holds the first one it can, moving to the next when one sells out
between search and hold, up to `MAX_HOLD_TRIES` offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skiff_contracts.inventory import (
    ConfirmHold,
    HoldPlaced,
    InventoryFailed,
    PlaceHold,
    ReleaseHold,
    SearchOffers,
)
from skiff_contracts.messages import (
    AnyTask,
    Cancelled,
    CancelTask,
    Confirmed,
    ConfirmTask,
    ExtractTask,
    Failed,
    Held,
    HoldTask,
    ResolveTask,
    WorkerReply,
)
from skiff_contracts.problems import Problem
from skiff_extraction.pipeline import Extractor
from skiff_worker.inventory_client import Inventory

MAX_HOLD_TRIES = 5
SEARCH_LIMIT = 20


def _failed(task: HoldTask | ConfirmTask | CancelTask, failure: InventoryFailed) -> Failed:
    return Failed(
        trip_id=task.trip_id,
        step=task.step,
        domain=task.domain,
        reason=failure.code,
        retryable=failure.retryable,
        errors=failure.errors or (Problem(code=failure.code, message=failure.message),),
    )


@dataclass
class DomainWorker:
    """`extractor` is the worker's own model version (it also takes unrouted extractions);
    `versions` are the adapter versions it serves besides, by model id (see versions.py)."""

    extractor: Extractor
    inventory: Inventory
    versions: dict[str, Extractor] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return self.extractor.domain

    def extractor_for(self, task: ExtractTask) -> Extractor:
        """The version the task was routed to, when this worker serves it."""
        return self.versions.get(task.model_id or "", self.extractor)

    async def handle(self, task: AnyTask) -> WorkerReply:
        if isinstance(task, ResolveTask) or task.domain != self.domain:
            return Failed(
                trip_id=task.trip_id,
                step=task.step,
                domain=task.domain,
                reason="wrong_domain",
                errors=(
                    Problem(
                        code="wrong_domain",
                        message=f"a {self.domain} worker got a {task.domain} {task.kind} task",
                    ),
                ),
            )
        if isinstance(task, ExtractTask):
            return await self.extractor_for(task).extract(task)
        if isinstance(task, HoldTask):
            return await self.hold(task)
        if isinstance(task, ConfirmTask):
            return await self.confirm(task)
        return await self.cancel(task)

    async def hold(self, task: HoldTask) -> Held | Failed:
        found = await self.inventory.search(
            task.domain, SearchOffers(domain=task.domain, params=task.params, limit=SEARCH_LIMIT)
        )
        if isinstance(found, InventoryFailed):
            return _failed(task, found)
        last = InventoryFailed(
            code="sold_out", message="no offer meets the request", retryable=False
        )
        for offer in found.offers[:MAX_HOLD_TRIES]:
            placed = await self.inventory.hold(
                task.domain, PlaceHold(idempotency_key=task.hold_key, offer_id=offer.offer_id)
            )
            if isinstance(placed, HoldPlaced):
                return Held(
                    trip_id=task.trip_id,
                    step=task.step,
                    domain=task.domain,
                    offer=placed.offer,
                    hold_id=placed.hold_id,
                    hold_key=task.hold_key,
                    expires_at=placed.expires_at,
                )
            last = placed
            if placed.code != "sold_out":
                break
        return _failed(task, last)

    async def confirm(self, task: ConfirmTask) -> Confirmed | Failed:
        booked = await self.inventory.confirm(
            task.domain, ConfirmHold(idempotency_key=task.idempotency_key, hold_id=task.hold_id)
        )
        if isinstance(booked, InventoryFailed):
            return _failed(task, booked)
        return Confirmed(
            trip_id=task.trip_id,
            step=task.step,
            domain=task.domain,
            hold_id=booked.hold_id,
            confirmation_code=booked.confirmation_code,
            total_price=booked.total_price,
            currency=booked.currency,
        )

    async def cancel(self, task: CancelTask) -> Cancelled | Failed:
        released = await self.inventory.release(
            task.domain, ReleaseHold(idempotency_key=task.idempotency_key, hold_key=task.hold_key)
        )
        if isinstance(released, InventoryFailed):
            return _failed(task, released)
        return Cancelled(
            trip_id=task.trip_id,
            step=task.step,
            domain=task.domain,
            hold_key=task.hold_key,
            already=released.already,
        )
