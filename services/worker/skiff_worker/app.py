"""The worker's edge: one durable JetStream consumer for its domain's commands."""

from __future__ import annotations

import json

import structlog
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.domains import Domain
from skiff_contracts.messages import TASK, Failed, WorkerReply
from skiff_contracts.problems import validation_problems
from skiff_runtime.broker import make_broker, pull_inbox
from skiff_runtime.delivery import PoisonMessage, settle
from skiff_runtime.jetstream import WORKER_CONSUMERS
from skiff_runtime.publishing import publish_durably
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings

log = structlog.get_logger()


async def publish_reply(
    broker: NatsBroker, domain: Domain, reply: WorkerReply, msg_id: str
) -> None:
    await publish_durably(
        broker, reply, subjects.result(domain), stream=subjects.STREAM_RESULTS, msg_id=msg_id
    )


async def reply_to_malformed(
    broker: NatsBroker, domain: Domain, body: bytes, error: ValidationError
) -> None:
    """Tell the planner at once when a command is unusable but still names its trip and step."""
    try:
        fields = json.loads(body)
        trip_id, step = str(fields["trip_id"]), str(fields["step"])
        message_id = str(fields.get("message_id") or f"{trip_id}:{step}")
    except (ValueError, KeyError, TypeError):
        return
    failed = Failed(
        trip_id=trip_id,
        step=step,
        domain=domain,
        reason="malformed_command",
        errors=validation_problems(error),
    )
    await publish_reply(broker, domain, failed, f"{message_id}:result")


def create_app(settings: WorkerSettings, worker: DomainWorker) -> tuple[FastStream, NatsBroker]:
    domain = settings.domain
    consumer = WORKER_CONSUMERS[domain]
    broker = make_broker(settings, f"worker-{domain}")

    @broker.subscriber(
        consumer.filter_subject,
        stream=JStream(consumer.stream, declare=False),
        durable=consumer.durable,
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        inbox_prefix=pull_inbox(settings, f"worker-{domain}"),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_task(message: NatsMessage) -> None:
        async def work() -> None:
            try:
                task = TASK.validate_json(message.body)
            except ValidationError as error:
                await reply_to_malformed(broker, domain, message.body, error)
                raise PoisonMessage(f"malformed command: {error.error_count()} errors") from error
            structlog.contextvars.bind_contextvars(trip_id=task.trip_id, step=task.step)
            try:
                reply = await worker.handle(task)
                log.info("task done", kind=reply.kind, reason=getattr(reply, "reason", None))
                await publish_reply(broker, domain, reply, f"{task.message_id}:result")
            finally:
                structlog.contextvars.unbind_contextvars("trip_id", "step")

        await settle(broker, message, consumer, work)

    return FastStream(broker), broker
