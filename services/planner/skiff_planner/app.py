"""The planner's edge: FastStream subscribers that translate NATS messages into service calls."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.messages import (
    SUBMIT_UNAVAILABLE,
    USER_INPUT,
    WORKER_RESULT,
    SubmitRejected,
    TripRequest,
)
from skiff_contracts.problems import Problem, validation_problems
from skiff_contracts.saga import TripStatus, TripStatusQuery
from skiff_extraction.router import Router, SlmRouter
from skiff_planner.adapters import (
    JetStreamBus,
    KvRegistryView,
    KvSagaStore,
    NatsRouteEscalation,
)
from skiff_planner.routers import RouterVersions, version_loader
from skiff_planner.service import Planner
from skiff_planner.settings import PlannerSettings
from skiff_planner.transitions import Policy
from skiff_runtime.broker import make_broker, pull_inbox
from skiff_runtime.delivery import PoisonMessage, settle
from skiff_runtime.jetstream import PLANNER_INPUT, PLANNER_RESULTS
from skiff_runtime.telemetry import trip_context

log = structlog.get_logger()

UNAVAILABLE = Problem(
    code=SUBMIT_UNAVAILABLE, message="the trip could not be stored now; the same request again "
    "(same client_request_id) is safe",
)  # fmt: skip


@dataclass
class PlannerRuntime:
    """What the handlers need once the broker is connected."""

    planner: Planner | None = None
    registry: KvRegistryView | None = None
    sweeper: asyncio.Task[None] | None = field(default=None)

    def require(self) -> Planner:
        if self.planner is None:
            raise RuntimeError("planner not started")
        return self.planner


def create_app(settings: PlannerSettings, router: Router) -> tuple[FastStream, NatsBroker]:
    broker = make_broker(settings, "planner")
    runtime = PlannerRuntime()

    @broker.subscriber(subjects.TRIP_SUBMIT_ALL, queue="planner")
    async def on_submit(message: NatsMessage) -> bytes:
        """`trip.submit.<owner>`: NATS lets each client publish under its own name only."""
        owner = subjects.token(message.raw_message.subject, -1)
        try:
            request = TripRequest.model_validate_json(message.body)
        except ValidationError as error:
            rejected = SubmitRejected(errors=validation_problems(error))
            log.info("submission rejected", errors=len(rejected.errors))
            return rejected.model_dump_json().encode()
        with trip_context(request.trip_id):
            try:
                accepted = await runtime.require().submit(request, owner)
            except Exception as error:  # a stream without a leader yet, a dropped connection
                log.warning("submission not stored; the client retries", error=repr(error))
                return SubmitRejected(errors=(UNAVAILABLE,)).model_dump_json().encode()
        return accepted.model_dump_json().encode()

    @broker.subscriber(subjects.TRIP_STATUS_ALL, queue="planner")
    async def on_status(message: NatsMessage) -> bytes:
        """`trip.status.<owner>`: one of the owner's trips, never another's."""
        owner = subjects.token(message.raw_message.subject, -1)
        try:
            query = TripStatusQuery.model_validate_json(message.body)
        except ValidationError:
            return TripStatus(trip_id="").model_dump_json().encode()
        record = await runtime.require().status(query.trip_id, owner)
        return TripStatus(trip_id=query.trip_id, record=record).model_dump_json().encode()

    @broker.subscriber(
        subjects.RESULTS_ALL,
        stream=JStream(subjects.STREAM_RESULTS, declare=False),
        durable=PLANNER_RESULTS.durable,
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        inbox_prefix=pull_inbox(settings, "planner"),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_result(message: NatsMessage) -> None:
        async def work() -> None:
            try:
                result = WORKER_RESULT.validate_json(message.body)
            except ValidationError as error:
                raise PoisonMessage(f"not a worker result: {error.error_count()} errors") from error
            with trip_context(result.trip_id, domain=result.domain, step=result.step):
                await runtime.require().on_result(result)

        await settle(broker, message, PLANNER_RESULTS, work)

    @broker.subscriber(
        PLANNER_INPUT.filter_subject,
        stream=JStream(PLANNER_INPUT.stream, declare=False),
        durable=PLANNER_INPUT.durable,
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        inbox_prefix=pull_inbox(settings, "planner"),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_user(message: NatsMessage) -> None:
        async def work() -> None:
            try:
                user = USER_INPUT.validate_json(message.body)
            except ValidationError as error:
                raise PoisonMessage(f"not a user input: {error.error_count()} errors") from error
            subject = message.raw_message.subject
            owner = subjects.token(subject, -2)  # trip.input.<owner>.<trip_id>
            if subject != subjects.trip_input(owner, user.trip_id):
                raise PoisonMessage("a trip's input must arrive on that trip's subject")
            with trip_context(user.trip_id):
                await runtime.require().on_user(user, owner)

        await settle(broker, message, PLANNER_INPUT, work)

    async def sweep_forever(planner: Planner) -> None:
        while True:
            await asyncio.sleep(settings.sweep_interval_s)
            try:
                await planner.sweep()
            except Exception as error:  # the sweeper must outlive any one bad record
                log.exception("sweep failed", error=repr(error))

    async def start() -> None:
        kv = await broker.key_value(subjects.BUCKET_SAGAS, declare=False)
        policy = Policy(
            extract_timeout=timedelta(seconds=settings.extract_timeout_s),
            resolve_timeout=timedelta(seconds=settings.resolve_timeout_s),
            booking_timeout=timedelta(seconds=settings.booking_timeout_s),
            input_timeout=timedelta(seconds=settings.input_timeout_s),
            hold_margin=timedelta(seconds=settings.hold_margin_s),
            escalation=settings.escalation,
            max_escalations_per_trip=settings.max_escalations_per_trip,
            llm_price_per_mtok=settings.llm_price_per_mtok,
        )
        registry = KvRegistryView()
        await registry.start(broker.connection.jetstream())
        runtime.registry = registry
        embedder = router.embedder if isinstance(router, SlmRouter) else None
        runtime.planner = Planner(
            KvSagaStore(kv), JetStreamBus(broker), router, registry, policy=policy,
            versions=RouterVersions(router, version_loader(embedder)),
            escalation=NatsRouteEscalation(broker, settings.route_escalation_timeout_s),
        )  # fmt: skip
        runtime.sweeper = asyncio.create_task(sweep_forever(runtime.planner))
        log.info("planner ready")

    async def stop() -> None:
        if runtime.registry is not None:
            await runtime.registry.stop()
        if runtime.sweeper is not None:
            runtime.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runtime.sweeper

    app = FastStream(broker, after_startup=[start], on_shutdown=[stop])
    return app, broker
