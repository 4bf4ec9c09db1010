"""NATS implementations of the planner's ports: the saga store on KV, the bus on JetStream,
the LLM tier's routing decisions over request/reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from skiff_contracts import subjects
from skiff_contracts.events import EventBase
from skiff_contracts.messages import ExtractTask, ResolveTask, RouteAnswer, RouteQuery
from skiff_contracts.registry import AnswerAccepted, CallRecord, ModelCard, TaskAliases, slug_of
from skiff_contracts.saga import Outgoing, SagaRecord
from skiff_planner.ports import RevisionConflict
from skiff_planner.routing import RegistrySnapshot
from skiff_runtime.publishing import publish_durably
from skiff_runtime.telemetry import inject_headers

log = structlog.get_logger()


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
    """Events to `trip.events.<owner>.<id>`, commands to `task.<domain>.<op>`, accepted answers
    to the call log (`calls.<domain>`), each with its message id."""

    def __init__(self, broker: NatsBroker) -> None:
        self.broker = broker

    async def publish(self, item: Outgoing, owner: str) -> None:
        if isinstance(item, AnswerAccepted | CallRecord):
            subject = subjects.calls(item.task.split(".", 1)[0])
            stream = subjects.STREAM_CALLS
        elif isinstance(item, EventBase):
            subject = subjects.trip_events(owner, item.trip_id)
            stream = subjects.STREAM_TRIP_EVENTS
        elif isinstance(item, ResolveTask):
            subject = subjects.TASK_LLM_RESOLVE
            stream = subjects.STREAM_TASKS_LLM
        elif isinstance(item, ExtractTask) and item.model_id is not None:
            subject = subjects.model_extract(item.domain, slug_of(item.model_id))
            stream = subjects.tasks_stream(item.domain)
        else:
            subject = subjects.task(item.domain, item.kind)
            stream = subjects.tasks_stream(item.domain)
        await publish_durably(self.broker, item, subject, stream=stream, msg_id=item.message_id)


class NatsRouteEscalation:
    """Asks the LLM tier over `llm.route` (request/reply); no answer in time is None."""

    def __init__(self, broker: NatsBroker, timeout_s: float) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def decide(self, query: RouteQuery) -> RouteAnswer | None:
        try:
            reply = await self.broker.connection.request(
                subjects.LLM_ROUTE, query.model_dump_json().encode(), timeout=self.timeout_s,
                headers=inject_headers(),
            )  # fmt: skip
            return RouteAnswer.model_validate_json(reply.data)
        except (TimeoutError, ValidationError) as error:
            log.warning("the LLM tier did not decide the route", error=repr(error))
            return None
        except Exception as error:  # no responders, a closed connection: the trip must go on
            log.warning("route escalation failed", error=repr(error))
            return None


class KvRegistryView:
    """The registry's cards and aliases, read from its KV buckets and kept current by watches,
    so the planner follows a promotion or a retirement without a restart."""

    def __init__(self) -> None:
        self.cards: dict[str, ModelCard] = {}
        self.aliases: dict[str, TaskAliases] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.watchers: list[KeyValue.KeyWatcher] = []

    async def start(self, js: JetStreamContext, timeout_s: float = 30.0) -> None:
        """Watch both buckets; return once their current values are loaded, so the planner
        never routes on an empty registry just after it starts."""
        loaded: list[asyncio.Event] = []
        for bucket, apply in ((subjects.BUCKET_MODELS, self._card),
                              (subjects.BUCKET_ALIASES, self._alias)):  # fmt: skip
            watcher = await (await js.key_value(bucket)).watchall()
            self.watchers.append(watcher)
            loaded.append(asyncio.Event())
            self.tasks.append(asyncio.create_task(self._follow(watcher, apply, loaded[-1])))
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(event.wait() for event in loaded))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for watcher in self.watchers:
            with contextlib.suppress(Exception):  # the connection may already be closed
                await watcher.stop()  # type: ignore[no-untyped-call]

    @staticmethod
    async def _follow(
        watcher: KeyValue.KeyWatcher,
        apply: Callable[[KeyValue.Entry], None],
        loaded: asyncio.Event,
    ) -> None:
        async for entry in watcher:
            if entry is None:  # the end of the initial values
                loaded.set()
                continue
            try:
                apply(entry)
            except ValidationError as error:  # one bad entry must not end the watch
                log.error("unreadable registry entry skipped", key=entry.key, error=str(error))
        log.error("registry watch ended: routing no longer follows the registry")

    def _card(self, entry: KeyValue.Entry) -> None:
        if entry.value:
            card = ModelCard.model_validate_json(entry.value)
            self.cards[card.model_id] = card

    def _alias(self, entry: KeyValue.Entry) -> None:
        if entry.value:
            aliases = TaskAliases.model_validate_json(entry.value)
            self.aliases[aliases.task] = aliases

    def snapshot(self) -> RegistrySnapshot:
        return RegistrySnapshot(dict(self.cards), dict(self.aliases))
