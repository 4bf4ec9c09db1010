"""The worker's edge: durable JetStream consumers for its domain's commands, and
extraction on request (`extract.<domain>`, for `skiff extract` over NATS).

Three kinds: the domain's shared consumer (holds, confirms, cancels, unrouted extractions),
the worker's own model version's extraction consumer, and one per adapter version it serves
(subscribed and stopped while it runs, `subscribe_version` / `unsubscribe_version`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from faststream.nats.subscriber.usecases import LogicSubscriber
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.domains import Domain
from skiff_contracts.messages import (
    TASK,
    AnyTask,
    ExtractTask,
    Failed,
    NeedsEscalation,
    WorkerReply,
    replying_to,
)
from skiff_contracts.problems import Problem, validation_problems
from skiff_contracts.registry import slug_of
from skiff_flywheel.call_records import call_record
from skiff_runtime.broker import make_broker, pull_inbox
from skiff_runtime.delivery import PoisonMessage, settle
from skiff_runtime.jetstream import WORKER_CONSUMERS, ConsumerSpec, version_consumer
from skiff_runtime.metrics import process_metrics
from skiff_runtime.publishing import publish_durably
from skiff_runtime.telemetry import annotate, trip_context
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings

log = structlog.get_logger()


async def publish_reply(
    broker: NatsBroker, domain: Domain, reply: WorkerReply, command_id: str
) -> None:
    """The reply to the command `command_id`, which it names (the planner takes no other)."""
    await publish_durably(
        broker, replying_to(reply, command_id), subjects.result(domain),
        stream=subjects.STREAM_RESULTS, msg_id=f"{command_id}:result",
    )  # fmt: skip


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
    await publish_reply(broker, domain, failed, message_id)


@dataclass
class WorkerApp:
    app: FastStream
    broker: NatsBroker
    model_subscriber: LogicSubscriber[Any]  # stopped when its model version is retired
    subscribe_version: Callable[[str], Awaitable[None]]  # an adapter version's consumer
    unsubscribe_version: Callable[[str], Awaitable[None]]


def task_is_shadow(task: AnyTask) -> bool:
    """A mirrored extraction whose answer is never used: its escalations escalate nothing."""
    return isinstance(task, ExtractTask) and task.shadow


def create_app(settings: WorkerSettings, worker: DomainWorker, model_id: str) -> WorkerApp:
    """Two durable consumers: the domain's shared one (holds, confirms, cancels, and
    unrouted extractions) and this model version's own extraction consumer."""
    domain = settings.domain
    service = f"worker-{domain}"
    broker = make_broker(settings, service)
    shared = WORKER_CONSUMERS[domain]
    model = version_consumer(domain, slug_of(model_id))
    metrics = process_metrics()

    async def publish_call_record(task: ExtractTask, reply: WorkerReply) -> None:
        prompt = worker.extractor_for(task).prompt_version  # the served version's prompt
        if (record := call_record(task, reply, model_id, prompt_version=prompt)) is not None:
            calls, stream = subjects.calls(domain), subjects.STREAM_CALLS
            await publish_durably(broker, record, calls, stream=stream, msg_id=record.record_id)

    async def deliver(message: NatsMessage, consumer: ConsumerSpec) -> None:
        async def work() -> None:
            try:
                task = TASK.validate_json(message.body)
            except ValidationError as error:
                await reply_to_malformed(broker, domain, message.body, error)
                raise PoisonMessage(f"malformed command: {error.error_count()} errors") from error
            with trip_context(task.trip_id, domain=domain, step=task.step):
                with metrics.timed_step(domain, task.kind):
                    reply = await worker.handle(task)
                log.info("task done", kind=reply.kind, reason=getattr(reply, "reason", None))
                if (call := getattr(reply, "call", None)) is not None:
                    annotate(tier=call.tier)
                    metrics.model_call(call)
                if isinstance(reply, NeedsEscalation) and not task_is_shadow(task):
                    annotate(escalation_reason=reply.reason)
                    metrics.escalation(reply.reason, domain)
                await publish_reply(broker, domain, reply, task.message_id)
                if isinstance(task, ExtractTask):
                    await publish_call_record(task, reply)

        await settle(broker, message, consumer, work)

    @broker.subscriber(subjects.extract(domain), queue=service)
    async def on_extract_request(message: NatsMessage) -> bytes:
        """`skiff extract` over NATS: the answer goes back to the asker only, so no trip's
        step can be reached this way; `model_id` must be a version this worker serves."""
        try:
            task = ExtractTask.model_validate_json(message.body)
        except ValidationError as error:
            refused = Failed(trip_id="", step="", domain=domain, reason="malformed_command",
                             errors=validation_problems(error))  # fmt: skip
            return refused.model_dump_json().encode()
        if task.model_id is not None and task.model_id not in (model_id, *worker.versions):
            problem = Problem(
                code="not_served", message=f"this worker does not serve {task.model_id}"
            )
            refused = Failed(trip_id=task.trip_id, step=task.step, domain=domain,
                             reason="not_served", errors=(problem,))  # fmt: skip
            return replying_to(refused, task.message_id).model_dump_json().encode()
        with trip_context(task.trip_id, domain=domain, step=task.step):
            reply = await worker.handle(task)
            if (call := getattr(reply, "call", None)) is not None:
                metrics.model_call(call)
            await publish_call_record(task, reply)
        return replying_to(reply, task.message_id).model_dump_json().encode()

    def subscribe(consumer: ConsumerSpec, *, persistent: bool = True) -> LogicSubscriber[Any]:
        return broker.subscriber(
            consumer.filter_subject,
            stream=JStream(consumer.stream, declare=False),
            durable=consumer.durable,
            pull_sub=PullSub(batch_size=1, timeout=1.0),
            inbox_prefix=pull_inbox(settings, service),
            ack_policy=AckPolicy.MANUAL,
            persistent=persistent,
        )

    @subscribe(shared)
    async def on_task(message: NatsMessage) -> None:
        await deliver(message, shared)

    model_subscriber = subscribe(model)

    @model_subscriber
    async def on_model_task(message: NatsMessage) -> None:
        await deliver(message, model)

    versions: dict[str, LogicSubscriber[Any]] = {}

    async def subscribe_version(version_id: str) -> None:
        """Start taking an adapter version's extractions (the broker is running)."""
        if version_id in versions:
            return
        consumer = version_consumer(domain, slug_of(version_id))
        subscriber = subscribe(consumer, persistent=False)

        @subscriber
        async def on_version_task(message: NatsMessage) -> None:
            await deliver(message, consumer)

        await subscriber.start()
        versions[version_id] = subscriber

    async def unsubscribe_version(version_id: str) -> None:
        if (subscriber := versions.pop(version_id, None)) is not None:
            await subscriber.stop()

    return WorkerApp(
        FastStream(broker), broker, model_subscriber, subscribe_version, unsubscribe_version
    )
