"""NATS implementations of the planner's ports: the saga store on KV, the bus on JetStream."""

from __future__ import annotations

from faststream.nats import NatsBroker
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from skiff_contracts import subjects
from skiff_contracts.events import EventBase
from skiff_contracts.messages import ResolveTask
from skiff_contracts.saga import Outgoing, SagaRecord
from skiff_planner.ports import RevisionConflict
from skiff_runtime.publishing import publish_durably


class KvSagaStore:
    """Saga records in the `SAGAS` bucket, one key per trip, compare-and-set on revision."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def create(self, record: SagaRecord) -> int | None:
        try:
            return int(await self.kv.create(record.trip_id, record.model_dump_json().encode()))
        except KeyWrongLastSequenceError:
            return None

    async def load(self, trip_id: str) -> tuple[SagaRecord, int] | None:
        try:
            entry = await self.kv.get(trip_id)
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return SagaRecord.model_validate_json(entry.value), int(entry.revision)

    async def update(self, record: SagaRecord, revision: int) -> int:
        try:
            return int(
                await self.kv.update(record.trip_id, record.model_dump_json().encode(), revision)
            )
        except KeyWrongLastSequenceError as error:
            raise RevisionConflict(record.trip_id) from error

    async def trip_ids(self) -> list[str]:
        try:
            return list(await self.kv.keys())
        except NoKeysError:
            return []


class JetStreamBus:
    """Events to `trip.events.<id>`, commands to `task.<domain>.<op>`, each with its message id."""

    def __init__(self, broker: NatsBroker) -> None:
        self.broker = broker

    async def publish(self, item: Outgoing) -> None:
        if isinstance(item, EventBase):
            subject = subjects.trip_events(item.trip_id)
            stream = subjects.STREAM_TRIP_EVENTS
        elif isinstance(item, ResolveTask):
            subject = subjects.TASK_LLM_RESOLVE
            stream = subjects.STREAM_TASKS
        else:
            subject = subjects.task(item.domain, item.kind)
            stream = subjects.STREAM_TASKS
        await publish_durably(self.broker, item, subject, stream=stream, msg_id=item.message_id)
