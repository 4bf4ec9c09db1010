"""The planner's logic: accepts trips, applies worker replies, sweeps deadlines.

Takes contract messages and ports; never imports NATS. Every change is a compare-and-set
on the saga record followed by publishing the record's outbox, then clearing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from skiff_contracts.base import utc_now
from skiff_contracts.messages import (
    Extracted,
    Failed,
    NeedsEscalation,
    TripAccepted,
    TripRequest,
)
from skiff_contracts.saga import SagaRecord
from skiff_extraction.router import Router
from skiff_planner.ports import Bus, RevisionConflict, SagaStore
from skiff_planner.transitions import Policy, apply_result, begin, expire_steps

log = structlog.get_logger()

Change = Callable[[SagaRecord], SagaRecord]
MAX_CAS_ATTEMPTS = 20
STALE_OUTBOX = timedelta(seconds=5)


class Planner:
    def __init__(
        self,
        store: SagaStore,
        bus: Bus,
        router: Router,
        *,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.bus = bus
        self.router = router
        self.policy = policy or Policy()
        self.clock = clock

    async def submit(self, request: TripRequest) -> TripAccepted:
        """Create the trip (once per client_request_id) and dispatch its first steps."""
        route = await asyncio.to_thread(self.router.route, request.text)
        record = begin(request, route, self.clock(), self.policy)
        revision = await self.store.create(record)
        if revision is None:
            log.info("duplicate submission", trip_id=record.trip_id)
            return TripAccepted(trip_id=record.trip_id, duplicate=True)
        log.info("trip accepted", trip_id=record.trip_id, domains=record.domains)
        await self._flush(record, revision)
        return TripAccepted(trip_id=record.trip_id, duplicate=False)

    async def on_result(self, result: Extracted | NeedsEscalation | Failed) -> None:
        await self._change(result.trip_id, lambda r: apply_result(r, result, self.clock()))

    async def sweep(self) -> int:
        """Expire overdue steps and re-publish outboxes a crashed planner left behind."""
        touched = 0
        now = self.clock()
        for trip_id in await self.store.trip_ids():
            loaded = await self.store.load(trip_id)
            if loaded is None:
                continue
            record, _ = loaded
            overdue = not record.terminal and any(
                s.status == "dispatched" and s.deadline is not None and s.deadline <= now
                for s in record.steps.values()
            )
            stale = bool(record.outbox) and now - record.updated_at >= STALE_OUTBOX
            if overdue or stale:
                touched += 1
                await self._change(trip_id, lambda r: expire_steps(r, self.clock()))
        return touched

    async def _change(self, trip_id: str, change: Change) -> SagaRecord | None:
        for _ in range(MAX_CAS_ATTEMPTS):
            loaded = await self.store.load(trip_id)
            if loaded is None:
                log.warning("no such trip", trip_id=trip_id)
                return None
            record, revision = loaded
            changed = change(record)
            if changed is not record:
                try:
                    revision = await self.store.update(changed, revision)
                except RevisionConflict:
                    continue
            await self._flush(changed, revision)
            return changed
        raise RevisionConflict(f"{trip_id}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes")

    async def _flush(self, record: SagaRecord, revision: int) -> None:
        """Publish the outbox, then clear what was published (by message id)."""
        if not record.outbox:
            return
        sent = set()
        for item in record.outbox:
            await self.bus.publish(item)
            sent.add(item.message_id)
        for _ in range(MAX_CAS_ATTEMPTS):
            remaining = tuple(i for i in record.outbox if i.message_id not in sent)
            try:
                await self.store.update(record.model_copy(update={"outbox": remaining}), revision)
                return
            except RevisionConflict:
                loaded = await self.store.load(record.trip_id)
                if loaded is None:
                    return
                record, revision = loaded
        # Harmless: another writer holds the record; the items stay and are re-sent (de-duplicated).
