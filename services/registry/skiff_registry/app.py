"""The registry's edge: the only FastStream code.

- `registry.<op>.<caller>`: one core request/reply subscriber per request kind, queue group
  `registry`. The caller's identity is the subject's last token, which NATS permissions pin to
  the connection's user: changes (register, promote, rollback, retire, thresholds) are for
  `operator` and `flywheel` only (a domain worker registers its own domain's extraction
  versions), and `who` in the alias history is the caller, whatever the request said.
  Unparseable input and unexpected failures are answered `Refused` — a requester never waits
  out a timeout on a message the registry received.
- `calls.*`: the durable `registry-metrics` consumer, fetched in batches of up to
  `calls_batch`; a batch is acked once its metrics are stored, an unreadable record is
  dead-lettered. This one is a plain nats-py pull loop on the broker's connection: FastStream
  0.7.8's batch loop lets nats-py's idle `asyncio.TimeoutError` escape (it catches only
  `nats.errors.TimeoutError`), and its supervisor then restarts it with an error each second.
- The call log holds calls and accepted answers (`CALL_LOG`); a record of neither kind is
  unreadable. A task that is not a domain's (`trains.extract`, work no micro-SLM covers) is
  counted like any other, under its own keys; the page shows the domains' tasks only.
- A ticker re-derives the metrics so the rolling window moves on without traffic.
- Another runs the automatic rollout (`Registry.auto_rollout`, gates in `gates.py`) every
  `rollout.every_s`; replicas may all run it: each step is a compare-and-set, and a step
  already taken decides nothing the next time.

The adapters are built before the subscribers start (`on_startup`), so no request is ever
answered by a half-started registry; start-up also completes changes a crash interrupted
and stores the contracts from code.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.problems import validation_problems
from skiff_contracts.registry import (
    CALL_LOG,
    REGISTRY_OPERATIONS,
    REGISTRY_REQUEST,
    ModelCard,
    ModelMetrics,
    Promote,
    Refused,
    RegisterModel,
    Retire,
    Rollback,
    SchemaEntry,
    Series,
    SetThreshold,
    TaskAliases,
)
from skiff_registry.adapters import JetStreamProvisioner, KvTable, StreamHistory
from skiff_registry.keys import SERIES_PREFIX, STATE_PREFIX
from skiff_registry.metrics import Limits, LogRecord, TaskState
from skiff_registry.recorder import MetricsRecorder
from skiff_registry.service import Registry
from skiff_registry.settings import RegistrySettings
from skiff_runtime.broker import make_broker, pull_inbox
from skiff_runtime.delivery import retry_delay
from skiff_runtime.jetstream import REGISTRY_CALLS, STREAM_DLQ, dlq_subject
from skiff_runtime.publishing import MSG_ID_HEADER

log = structlog.get_logger()

SERVICE = "registry"
QUEUE = "registry"
MUTATIONS = frozenset({"register_model", "promote", "rollback", "retire", "set_threshold"})
GOVERNORS = frozenset({"operator", "flywheel"})  # the identities that may change the registry
_TASK = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass
class RegistryRuntime:
    """What the handlers need once the broker is connected."""

    registry: Registry | None = None
    recorder: MetricsRecorder | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def require(self) -> tuple[Registry, MetricsRecorder]:
        if self.registry is None or self.recorder is None:
            raise RuntimeError("registry not started")
        return self.registry, self.recorder


def forbidden(operation: str, caller: str, request: Any) -> Refused | None:
    """Why `caller` may not make this request, if it may not. Changes are for the governors;
    a domain worker registers and heartbeats its own domain's extraction versions only."""
    if operation not in MUTATIONS or caller in GOVERNORS:
        return None
    worker_task = f"{caller.removeprefix('worker-')}.extract"
    if (
        operation == "register_model"
        and caller.startswith("worker-")
        and isinstance(request, RegisterModel)
        and request.card.task == worker_task
    ):
        return None
    return Refused(code="forbidden", message=f"{caller} may not {operation}")


def as_caller(request: Any, caller: str) -> Any:
    """The request with `who` set to the authenticated caller, whatever it said."""
    if isinstance(request, Promote | Rollback | Retire):
        return request.model_copy(update={"who": caller})
    if isinstance(request, SetThreshold):
        calibration = request.calibration.model_copy(update={"who": caller})
        return request.model_copy(update={"calibration": calibration})
    return request


async def answer(runtime: RegistryRuntime, operation: str, caller: str, body: bytes) -> Any:
    """Parse one request for `operation` from `caller` and run it; bad input is a typed reply."""
    try:
        request = REGISTRY_REQUEST.validate_json(body)
    except ValidationError as error:
        return Refused(
            code="invalid",
            message=f"not a valid {operation} request",
            problems=validation_problems(error),
        )
    if request.kind != operation:
        return Refused(code="invalid", message=f"a {request.kind} request sent to {operation}")
    if refused := forbidden(operation, caller, request):
        return refused
    try:
        return await runtime.require()[0].handle(as_caller(request, caller))
    except Exception as error:  # answer anyway: a silent drop looks like a timeout
        log.exception("registry request failed", operation=operation, error=repr(error))
        return Refused(code="unavailable", message="the registry failed unexpectedly; retry")


def _handler(runtime: RegistryRuntime, operation: str) -> Callable[[NatsMessage], Awaitable[bytes]]:
    async def handle(message: NatsMessage) -> bytes:
        caller = subjects.token(message.raw_message.subject, -1)
        reply = await answer(runtime, operation, caller, message.body)
        if isinstance(reply, Refused):
            log.info("registry refused", operation=operation, caller=caller, code=reply.code,
                     why=reply.message)  # fmt: skip
        return bytes(reply.model_dump_json().encode())

    handle.__name__ = f"on_{operation}"
    return handle


def parse_record(message: Msg) -> LogRecord:
    """A call-log record, or ValueError when it can never be one (dead-letter it)."""
    record = CALL_LOG.validate_json(message.data)
    if not _TASK.match(record.task):
        raise ValueError(f"task {record.task!r} cannot be a key")
    return record


async def dead_letter(broker: NatsBroker, message: Msg, reason: str) -> None:
    """Copy a call record that can never be read to `dlq.CALLS`, then terminate it."""
    meta = message.metadata
    sequence = meta.sequence.stream if meta.sequence else 0
    headers = {
        MSG_ID_HEADER: f"dlq:{REGISTRY_CALLS.stream}:{sequence}",
        "Skiff-Dlq-Reason": reason[:1000],
        "Skiff-Dlq-Subject": message.subject,
        "Skiff-Dlq-Stream": REGISTRY_CALLS.stream,
        "Skiff-Dlq-Consumer": REGISTRY_CALLS.durable,
        "Skiff-Dlq-Sequence": str(sequence),
        "Skiff-Dlq-Deliveries": str(meta.num_delivered or 1),
    }
    await broker.publish(
        message.data, dlq_subject(REGISTRY_CALLS.stream), headers=headers, stream=STREAM_DLQ
    )
    await message.term()
    log.error("dead-lettered", subject=message.subject, reason=reason)


async def record_batch(broker: NatsBroker, recorder: MetricsRecorder, batch: list[Msg]) -> None:
    """Store one batch's metrics, then ack it; a failure naks it for a paced redelivery."""
    records: list[LogRecord] = []
    readable: list[Msg] = []
    for message in batch:
        try:
            records.append(parse_record(message))
            readable.append(message)
        except (ValidationError, ValueError) as error:
            await dead_letter(broker, message, f"poison: not a call-log record: {error}")
    try:
        new = await recorder.record(records)
    except Exception as error:  # whatever was stored is recognised when the batch comes again
        log.exception("metrics not stored", records=len(records), error=repr(error))
        for message in readable:
            await message.nak(delay=retry_delay(message.metadata.num_delivered or 1))
        return
    for message in readable:
        await message.ack()
    log.debug("calls recorded", records=len(records), new=new)


def create_app(settings: RegistrySettings) -> tuple[FastStream, NatsBroker]:
    broker = make_broker(settings, SERVICE)
    runtime = RegistryRuntime()
    for operation in REGISTRY_OPERATIONS:
        broker.subscriber(subjects.registry(operation, "*"), queue=QUEUE)(
            _handler(runtime, operation)
        )

    async def consume_calls(recorder: MetricsRecorder) -> None:
        js = broker.connection.jetstream()
        pull = await js.pull_subscribe_bind(
            durable=REGISTRY_CALLS.durable,
            stream=REGISTRY_CALLS.stream,
            inbox_prefix=pull_inbox(settings, SERVICE),
        )
        try:
            await fetch_forever(pull, recorder)
        finally:  # a subscription left behind makes the connection's drain wait out its 30 s
            with contextlib.suppress(Exception):
                await pull.unsubscribe()

    async def fetch_forever(pull: Any, recorder: MetricsRecorder) -> None:
        while True:
            try:
                batch = await pull.fetch(batch=settings.calls_batch, timeout=1.0)
            except TimeoutError:  # nats-py raises both kinds; both mean "nothing yet"
                continue
            except Exception as error:  # disconnected: the client reconnects by itself
                log.warning("calls not fetched", error=repr(error))
                await asyncio.sleep(1.0)
                continue
            try:
                await record_batch(broker, recorder, batch)
            except Exception as error:  # unacked, so redelivered after the ack wait
                log.exception("call batch not settled", error=repr(error))

    async def tick_forever(recorder: MetricsRecorder) -> None:
        while True:
            await asyncio.sleep(settings.snapshot_every_s)
            try:
                await recorder.snapshot()
            except Exception as error:  # the ticker must outlive one failed write
                log.exception("metrics snapshot failed", error=repr(error))

    async def start() -> None:
        await broker.connect()
        js = broker.connection.jetstream()
        models = await js.key_value(subjects.BUCKET_MODELS)
        aliases = await js.key_value(subjects.BUCKET_ALIASES)
        schemas = await js.key_value(subjects.BUCKET_SCHEMAS)
        metrics = await js.key_value(subjects.BUCKET_METRICS)
        series = KvTable(metrics, Series, SERIES_PREFIX)
        # Model metrics are only ever read by key (the bucket also holds the state and series).
        model_metrics = KvTable(metrics, ModelMetrics)
        registry = Registry(
            KvTable(models, ModelCard),
            KvTable(aliases, TaskAliases),
            KvTable(schemas, SchemaEntry),
            model_metrics,
            series,
            StreamHistory(js),
            JetStreamProvisioner(js),
            rollout_gates=settings.rollout,
        )
        for line in await registry.reconcile():
            log.warning("repaired", what=line)
        contracts = await registry.register_contracts()
        limits = Limits(
            window_s=settings.metrics_window_s,
            bucket_s=settings.metrics_bucket_s,
            shadow_ttl_s=settings.shadow_match_ttl_s,
            shadow_max=settings.shadow_pending_max,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            dedupe_max=settings.dedupe_max,
            answer_ttl_s=settings.answer_match_ttl_s,
            answer_max=settings.answer_pending_max,
        )
        runtime.recorder = MetricsRecorder(
            KvTable(metrics, TaskState, STATE_PREFIX),
            model_metrics,
            series,
            limits=limits,
            series_points=settings.series_points,
        )
        runtime.registry = registry
        log.info("registry ready", contracts=[f"{r.schema_id}.v{r.version}" for r in contracts])

    async def roll_out_forever(registry: Registry) -> None:
        while True:
            await asyncio.sleep(settings.rollout.every_s)
            try:
                await registry.auto_rollout()
            except Exception as error:  # the next round decides again from what is stored
                log.exception("automatic rollout failed", error=repr(error))

    async def after_start() -> None:
        registry, recorder = runtime.require()
        runtime.tasks = [
            asyncio.create_task(consume_calls(recorder)),
            asyncio.create_task(tick_forever(recorder)),
        ]
        if settings.rollout.enabled:
            runtime.tasks.append(asyncio.create_task(roll_out_forever(registry)))

    async def stop() -> None:
        for task in runtime.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runtime.tasks = []

    app = FastStream(broker, on_startup=[start], after_startup=[after_start], on_shutdown=[stop])
    return app, broker
