"""The LLM worker's edge: the durable `llm-worker` consumer on TASKS_LLM, replies on
`result.llm`, call records on `calls.<work>` (stream CALLS).

Routing decisions the planner's router was unsure of arrive on `llm.route` (request/reply,
queue group `llm-worker`): the tier answers with checked labels and records the call.
`skiff extract --tiers slm+llm` over NATS asks on `extract.llm` (request/reply): the answer
goes back to the asker only.

The call records go out before the reply: when the planner accepts an answer, the record of
the call it came from is already on the log. Both carry deterministic `Nats-Msg-Id`s, so a
redelivered command is stored once.
"""

from __future__ import annotations

import json

import structlog
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.messages import (
    TASK,
    Failed,
    ResolveTask,
    RouteAnswer,
    RouteQuery,
    WorkerReply,
    replying_to,
)
from skiff_contracts.problems import validation_problems
from skiff_contracts.registry import CallRecord
from skiff_flywheel.call_records import work_of
from skiff_llm_worker.service import LlmWorker
from skiff_llm_worker.settings import LlmWorkerSettings
from skiff_runtime.broker import make_broker, pull_inbox
from skiff_runtime.delivery import PoisonMessage, settle
from skiff_runtime.jetstream import LLM_WORKER
from skiff_runtime.metrics import process_metrics
from skiff_runtime.publishing import publish_durably
from skiff_runtime.telemetry import annotate, trip_context

SERVICE = "llm-worker"

log = structlog.get_logger()


async def publish_reply(broker: NatsBroker, reply: WorkerReply, command_id: str) -> None:
    """The reply to the command `command_id`, which it names (the planner takes no other)."""
    await publish_durably(
        broker, replying_to(reply, command_id), subjects.RESULT_LLM,
        stream=subjects.STREAM_RESULTS, msg_id=f"{command_id}:result",
    )  # fmt: skip


async def reply_to_malformed(broker: NatsBroker, body: bytes, error: ValidationError) -> None:
    """Tell the planner at once when a command is unusable but still names its trip and step."""
    try:
        fields = json.loads(body)
        trip_id, step = str(fields["trip_id"]), str(fields["step"])
        message_id = str(fields.get("message_id") or f"{trip_id}:{step}")
    except (ValueError, KeyError, TypeError):
        return
    failed = Failed(
        trip_id=trip_id, step=step, reason="malformed_command", errors=validation_problems(error)
    )
    await publish_reply(broker, failed, message_id)


async def publish_record(broker: NatsBroker, record: CallRecord) -> None:
    subject = subjects.calls(work_of(record.task))
    await publish_durably(
        broker, record, subject, stream=subjects.STREAM_CALLS, msg_id=record.record_id
    )


def create_app(settings: LlmWorkerSettings, worker: LlmWorker) -> tuple[FastStream, NatsBroker]:
    broker = make_broker(settings, SERVICE)
    metrics = process_metrics()

    @broker.subscriber(
        LLM_WORKER.filter_subject,
        stream=JStream(LLM_WORKER.stream, declare=False),
        durable=LLM_WORKER.durable,
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        inbox_prefix=pull_inbox(settings, SERVICE),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_task(message: NatsMessage) -> None:
        async def work() -> None:
            try:
                task = TASK.validate_json(message.body)
            except ValidationError as error:
                await reply_to_malformed(broker, message.body, error)
                raise PoisonMessage(f"malformed command: {error.error_count()} errors") from error
            with trip_context(task.trip_id, domain=task.domain, step=task.step):
                with metrics.timed_step(task.domain or "none", task.kind):
                    handled = await worker.handle(task)
                reply = handled.reply
                log.info("task done", kind=reply.kind, reason=getattr(reply, "reason", None))
                if (call := getattr(reply, "call", None)) is not None:
                    annotate(tier=call.tier)
                    metrics.model_call(call)
                for record in handled.records:
                    await publish_record(broker, record)
                await publish_reply(broker, reply, task.message_id)

        # settle acks after the reply is stored, sends in_progress while the model works,
        # paces retries of failures and dead-letters after max_deliver.
        await settle(broker, message, LLM_WORKER, work)

    @broker.subscriber(subjects.extract("llm"), queue=subjects.LLM_ROUTE_QUEUE)
    async def on_resolve_request(message: NatsMessage) -> bytes:
        """`skiff extract --tiers slm+llm` over NATS: the answer goes back to the asker only."""
        try:
            task = ResolveTask.model_validate_json(message.body)
        except ValidationError as error:
            refused = Failed(trip_id="", step="", reason="malformed_command",
                             errors=validation_problems(error))  # fmt: skip
            return refused.model_dump_json().encode()
        with trip_context(task.trip_id, domain=task.domain, step=task.step):
            handled = await worker.handle(task)
            if (call := getattr(handled.reply, "call", None)) is not None:
                metrics.model_call(call)
            for record in handled.records:
                await publish_record(broker, record)
        return replying_to(handled.reply, task.message_id).model_dump_json().encode()

    @broker.subscriber(subjects.LLM_ROUTE, queue=subjects.LLM_ROUTE_QUEUE)
    async def on_route(message: NatsMessage) -> bytes:
        try:
            query = RouteQuery.model_validate_json(message.body)
        except ValidationError as error:
            refused = RouteAnswer(trip_id="", decided=False, errors=validation_problems(error))
            return refused.model_dump_json().encode()
        with trip_context(query.trip_id, step="route"):
            routed = await worker.route(query)
            log.info("route decided", decided=routed.answer.decided,
                     labels=(*routed.answer.domains, *routed.answer.unsupported))  # fmt: skip
            await publish_record(broker, routed.record)
        return routed.answer.model_dump_json().encode()

    return FastStream(broker), broker
