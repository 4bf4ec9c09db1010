"""The planner's logic: accepts trips, applies worker replies, sweeps deadlines.

Takes contract messages and ports; never imports NATS. Every change is a compare-and-set
on the saga record followed by publishing the record's outbox, then clearing it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from skiff_contracts.base import utc_now
from skiff_contracts.events import StepChanged, TripFinished
from skiff_contracts.messages import (
    SubmitConflict,
    TripAccepted,
    TripAnswer,
    TripCancel,
    TripRequest,
    WorkerReply,
)
from skiff_contracts.saga import Outgoing, SagaRecord
from skiff_extraction.router import Router
from skiff_planner.ports import Bus, RegistryView, RevisionConflict, RouteEscalation, SagaStore
from skiff_planner.routers import Routed, RouterVersions, route_trip, version_loader
from skiff_planner.routing import assign
from skiff_planner.transitions import (
    Policy,
    begin,
    foreign,
    on_result,
    on_tick,
    on_user,
    replan,
)
from skiff_runtime.metrics import Metrics, process_metrics

log = structlog.get_logger()

Change = Callable[[SagaRecord], SagaRecord]
MAX_CAS_ATTEMPTS = 20
STALE_OUTBOX = timedelta(seconds=5)


def due(record: SagaRecord, now: datetime) -> bool:
    """Whether the clock alone has something to do for this trip."""
    if record.deadline is not None and record.deadline <= now:
        return True
    return any(
        (s.status == "dispatched" and s.deadline is not None and s.deadline <= now)
        or (s.status == "pending" and s.retry_at is not None and s.retry_at <= now)
        for s in record.steps.values()
    )


class Planner:
    def __init__(
        self,
        store: SagaStore,
        bus: Bus,
        router: Router,
        registry: RegistryView,
        *,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
        versions: RouterVersions | None = None,
        escalation: RouteEscalation | None = None,
    ) -> None:
        """`router` routes while the registry names no `router.route` champion; `versions`
        loads the registered ones; `escalation` asks the LLM tier when a route is unsure."""
        self.store = store
        self.bus = bus
        self.versions = versions or RouterVersions(router, version_loader(None))
        self.escalation = escalation
        self.registry = registry
        self.policy = policy or Policy()
        self.clock = clock
        self.metrics = metrics if metrics is not None else process_metrics()

    async def submit(self, request: TripRequest, owner: str) -> TripAccepted | SubmitConflict:
        """Create `owner`'s trip (once per client_request_id) and dispatch its first steps.
        The same id again is the same trip; with another text, or from another owner, it is
        a conflict and creates nothing."""
        if (loaded := await self.store.load(request.trip_id)) is not None:
            return self._again(loaded[0], request, owner)
        routed = await self._route(request.trip_id, request.text, attempt=0)
        snapshot = self.registry.snapshot()
        assignments = {d: assign(snapshot, request.trip_id, d) for d in routed.route.domains}
        record = begin(
            request, routed.route, assignments, self.clock(), self.policy, routed.records,
            owner=owner,
        )  # fmt: skip
        revision = await self.store.create(record)
        if revision is None:
            loaded = await self.store.load(record.trip_id)
            assert loaded is not None  # created by a concurrent submission; never deleted
            return self._again(loaded[0], request, owner)
        log.info("trip accepted", trip_id=record.trip_id, domains=record.domains)
        await self._flush(record, revision)
        return TripAccepted(trip_id=record.trip_id, duplicate=False)

    def _again(
        self, record: SagaRecord, request: TripRequest, owner: str
    ) -> TripAccepted | SubmitConflict:
        """A submission of a client_request_id that already made a trip."""
        if record.owner != owner:
            self.metrics.refused("foreign_submission")
            log.warning("submission reuses another owner's request id", trip_id=record.trip_id)
            return SubmitConflict(
                trip_id=record.trip_id, message="this client_request_id is already in use"
            )
        if record.request.text != request.text:
            log.info("request id reused with another text", trip_id=record.trip_id)
            return SubmitConflict(
                trip_id=record.trip_id,
                message="this client_request_id was submitted with another text; "
                "use a new id for a new trip",
            )
        log.info("duplicate submission", trip_id=record.trip_id)
        return TripAccepted(trip_id=record.trip_id, duplicate=True)

    async def status(self, trip_id: str, owner: str) -> SagaRecord | None:
        """`owner`'s trip record; None when there is none (another owner's trip included)."""
        loaded = await self.store.load(trip_id)
        if loaded is None or loaded[0].owner != owner:
            return None
        return loaded[0]

    async def on_result(self, result: WorkerReply) -> None:
        loaded = await self.store.load(result.trip_id)
        if loaded is not None and foreign(loaded[0], result):
            self.metrics.refused("foreign_reply")
            log.warning(
                "reply to a command this trip did not send for the step: dropped",
                trip_id=result.trip_id, step=result.step, command_id=result.command_id,
            )  # fmt: skip
            return
        await self._change(
            result.trip_id, lambda r: on_result(r, result, self.clock(), self.policy)
        )

    async def on_user(self, message: TripAnswer | TripCancel, owner: str) -> None:
        """The user's answer or cancel, from `owner`: another owner's is dropped."""
        loaded = await self.store.load(message.trip_id)
        if loaded is not None and loaded[0].owner != owner:
            self.metrics.refused("foreign_input")
            log.warning("input for another owner's trip: dropped", trip_id=message.trip_id)
            return
        if (
            isinstance(message, TripAnswer)
            and loaded is not None
            and loaded[0].state == "needs_input"
            and not loaded[0].domains
        ):  # the user says what to book: route the request and the answers again
            record = loaded[0]
            text = " ".join((record.request.text, *record.answers, message.text))
            routed = await self._route(record.trip_id, text, attempt=len(record.answers) + 1)
            snapshot = self.registry.snapshot()
            assignments = {d: assign(snapshot, record.trip_id, d) for d in routed.route.domains}
            await self._change(message.trip_id, lambda r: replan(
                r, message, routed.route, assignments, self.clock(), self.policy, routed.records
            ))  # fmt: skip
            return
        await self._change(
            message.trip_id, lambda r: on_user(r, message, self.clock(), self.policy)
        )

    async def _route(self, trip_id: str, text: str, *, attempt: int) -> Routed:
        versions = self.versions.for_trip(self.registry.snapshot(), trip_id)
        return await route_trip(versions, trip_id, text, self.escalation, attempt=attempt)

    async def sweep(self) -> int:
        """Re-drive every trip whose clock has run out, and re-publish outboxes a crashed
        planner left behind. Returns how many trips it touched."""
        touched = 0
        now = self.clock()
        for trip_id in await self.store.trip_ids():
            try:
                loaded = await self.store.load(trip_id)
                if loaded is None:
                    continue
                record, _ = loaded
                stale = bool(record.outbox) and now - record.updated_at >= STALE_OUTBOX
                if stale or (not record.terminal and due(record, now)):
                    touched += 1
                    await self._change(trip_id, lambda r: on_tick(r, self.clock(), self.policy))
            except Exception as error:  # one bad record must not stop the sweep of the others
                log.error("sweep of a trip failed", trip_id=trip_id, error=repr(error))
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
                    self.metrics.conflict()
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
            await self.bus.publish(item, record.owner)
            sent.add(item.message_id)
            self._count(item)
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

    def _count(self, item: Outgoing) -> None:
        """Saga metrics, read off the events a transition emitted."""
        if isinstance(item, StepChanged) and item.operation in ("extract", "resolve"):
            if item.status == "succeeded" and item.handled_by is not None:
                self.metrics.resolved(item.domain, item.handled_by)
            elif item.operation == "resolve" and item.status == "dispatched" and item.reason:
                self.metrics.escalation(item.reason, item.domain)
        elif isinstance(item, TripFinished):
            self.metrics.trip_finished(item.state)
