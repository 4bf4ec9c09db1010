"""At-least-once handling of one JetStream message: ack, paced retry, or dead-letter.

JetStream redelivers a plain NAK at once and keeps the server's max-deliveries advisory
nowhere, so retries are paced with `nak(delay=…)` and a message that used its last delivery
(or can never succeed) is copied to the `DLQ` stream with the reason, then terminated.
Every settled delivery is counted in `skiff_messages_total{subject,status}`, and a failed
one is recorded on the current (FastStream consumer) span, which would otherwise end OK
because the error never leaves the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from faststream.nats import NatsBroker
from faststream.nats.message import NatsMessage
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from skiff_runtime.jetstream import STREAM_DLQ, ConsumerSpec, dlq_subject
from skiff_runtime.metrics import Metrics, process_metrics
from skiff_runtime.publishing import MSG_ID_HEADER

log = structlog.get_logger()

HEARTBEAT_S = 5.0
MAX_RETRY_DELAY_S = 30.0

# The server's consumer config decides when redelivery stops, not the code's copy of it:
# a handler that waited for more deliveries than the server allows would never dead-letter,
# and the server would silently drop the message. Read once per consumer, then cached.
_server_max_deliver: dict[tuple[str, str], int] = {}


class PoisonMessage(Exception):
    """This message can never be processed (malformed, wrong schema): dead-letter it now."""


def deliveries(message: NatsMessage) -> int:
    """How many times the server has delivered this message, this delivery included."""
    return int(message.raw_message.metadata.num_delivered or 1)


def retry_delay(delivered: int) -> float:
    """Exponential pacing: 0.5 s, 1 s, 2 s … capped at 30 s."""
    return float(min(MAX_RETRY_DELAY_S, 0.5 * 2 ** max(0, delivered - 1)))


async def dead_letter(
    broker: NatsBroker, message: NatsMessage, spec: ConsumerSpec, reason: str
) -> None:
    """Copy the message to `dlq.<stream>` with why and where it came from, then terminate it."""
    meta = message.raw_message.metadata
    sequence = meta.sequence.stream if meta.sequence else 0
    headers = {
        MSG_ID_HEADER: f"dlq:{spec.stream}:{sequence}",
        "Skiff-Dlq-Reason": reason[:1000],
        "Skiff-Dlq-Subject": message.raw_message.subject,
        "Skiff-Dlq-Stream": spec.stream,
        "Skiff-Dlq-Consumer": spec.durable,
        "Skiff-Dlq-Sequence": str(sequence),
        "Skiff-Dlq-Deliveries": str(deliveries(message)),
    }
    await broker.publish(message.body, dlq_subject(spec.stream), headers=headers, stream=STREAM_DLQ)
    await message.reject()
    log.error("dead-lettered", subject=message.raw_message.subject, reason=reason)


@contextlib.asynccontextmanager
async def heartbeat(message: NatsMessage, every_s: float = HEARTBEAT_S) -> AsyncIterator[None]:
    """Tell the server the message is still being worked on, so AckWait does not expire."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)
            await message.in_progress()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def max_deliver(broker: NatsBroker, spec: ConsumerSpec) -> int:
    """The consumer's `max_deliver` as the server has it (the spec's when unlimited)."""
    key = (spec.stream, spec.durable)
    if key not in _server_max_deliver:
        info = await broker.connection.jetstream().consumer_info(spec.stream, spec.durable)
        configured = info.config.max_deliver
        _server_max_deliver[key] = configured if configured and configured > 0 else spec.max_deliver
    return _server_max_deliver[key]


def _record_failure(error: Exception, outcome: str) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{outcome}: {type(error).__name__}"))
        span.set_attribute("skiff.delivery.outcome", outcome)


async def settle(
    broker: NatsBroker,
    message: NatsMessage,
    spec: ConsumerSpec,
    work: Callable[[], Awaitable[None]],
    *,
    metrics: Metrics | None = None,
) -> None:
    """Run `work` for one delivery and settle the message according to how it ended.

    The outcome is counted in `metrics` (default: `process_metrics()`).
    """
    counted = metrics if metrics is not None else process_metrics()
    subject = message.raw_message.subject
    try:
        async with heartbeat(message):
            await work()
    except PoisonMessage as error:
        _record_failure(error, "poison")
        await dead_letter(broker, message, spec, f"poison: {error}")
        counted.message(subject, "poison")
        return
    except Exception as error:
        delivered = deliveries(message)
        if delivered >= await max_deliver(broker, spec):
            _record_failure(error, "dead_lettered")
            await dead_letter(broker, message, spec, f"failed {delivered} times: {error!r}")
            counted.message(subject, "dead_lettered")
        else:
            _record_failure(error, "nacked")
            log.warning("retrying", error=repr(error), delivered=delivered)
            await message.nack(delay=retry_delay(delivered))
            counted.message(subject, "nacked")
        return
    await message.ack()
    counted.message(subject, "acked")
