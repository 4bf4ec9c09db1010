"""NATS implementations of the registry's ports: typed KV tables, the history stream, and
the provisioning of each model version's durable consumer."""

from __future__ import annotations

import re
from typing import Generic

from nats.js import JetStreamContext
from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from skiff_contracts import subjects
from skiff_contracts.domains import Domain
from skiff_contracts.registry import AliasMove
from skiff_registry.ports import RevisionConflict, T, Versioned
from skiff_runtime.jetstream import WORKER_CONSUMERS, version_consumer
from skiff_runtime.publishing import MSG_ID_HEADER

_VALID_KEY = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")


class KvTable(Generic[T]):
    """Values of one pydantic type in a KV bucket, under an optional key prefix."""

    def __init__(self, kv: KeyValue, model: type[T], prefix: str = "") -> None:
        self.kv = kv
        self.model = model
        self.prefix = prefix

    def _key(self, key: str) -> str:
        full = self.prefix + key
        if not _VALID_KEY.match(full):
            raise ValueError(f"not a valid key: {full!r}")
        return full

    async def get(self, key: str) -> Versioned[T] | None:
        if not _VALID_KEY.match(self.prefix + key):
            return None  # nothing can be stored under a key that cannot exist
        try:
            entry = await self.kv.get(self._key(key))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if not entry.value or entry.revision is None:
            return None
        return Versioned(self.model.model_validate_json(entry.value), int(entry.revision))

    async def create(self, key: str, value: T) -> int | None:
        try:
            return int(await self.kv.create(self._key(key), value.model_dump_json().encode()))
        except KeyWrongLastSequenceError:
            return None

    async def update(self, key: str, value: T, revision: int) -> int:
        data = value.model_dump_json().encode()
        try:
            return int(await self.kv.update(self._key(key), data, revision))
        except KeyWrongLastSequenceError as error:
            raise RevisionConflict(key) from error

    async def put(self, key: str, value: T) -> int:
        return int(await self.kv.put(self._key(key), value.model_dump_json().encode()))

    async def values(self) -> list[T]:
        """Every current value under the prefix, in key order.

        The keys come from the bucket stream's subjects, then each is read on its own. Not a
        watcher: nats-py's KV watch can signal the end of the initial values before the last
        of them is delivered, and a listing then misses a card (seen under load).
        """
        kv_prefix = f"$KV.{self.kv._name}."  # nats-py keeps the bucket's names private
        info = await self.kv._js.stream_info(
            self.kv._stream, subjects_filter=f"{kv_prefix}{self.prefix}>"
        )
        found: list[T] = []
        for subject in sorted(info.state.subjects or {}):
            stored = await self.get(subject[len(kv_prefix) + len(self.prefix) :])
            if stored is not None:
                found.append(stored.value)
        return found


class StreamHistory:
    """Alias moves on `registry-history.<task>` in the `REGISTRY_HISTORY` stream."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def append(self, move: AliasMove, msg_id: str) -> None:
        await self.js.publish(
            subjects.registry_history(move.task),
            move.model_dump_json().encode(),
            stream=subjects.STREAM_REGISTRY_HISTORY,
            headers={MSG_ID_HEADER: msg_id},
        )

    async def read(self, task: str) -> list[AliasMove]:
        """Message by message (`next_by_subj`): a task's history is a few dozen entries."""
        subject = subjects.registry_history(task)
        moves: list[AliasMove] = []
        sequence = 1
        while True:
            try:
                message = await self.js.get_msg(
                    subjects.STREAM_REGISTRY_HISTORY, seq=sequence, subject=subject, next=True
                )
            except NotFoundError:
                return moves
            if message.data:
                moves.append(AliasMove.model_validate_json(message.data))
            sequence = int(message.seq or sequence) + 1


class JetStreamProvisioner:
    """Creates a model version's durable extraction consumer on its domain's task stream
    (idempotent).

    The consumer is named in the API subject with its filter (`CONSUMER.CREATE.<stream>.
    <name>.<filter>`), so the registry's permission can be limited to model subjects. Its
    redelivery timers (`ack_wait`, `max_deliver`, `max_ack_pending`) are copied from the
    domain's shared consumer as provisioned (`skiff streams apply`), so one layout sets how
    fast every extraction of the domain is redelivered after a crash.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def provision(self, domain: Domain, model_slug: str) -> None:
        spec = version_consumer(domain, model_slug)
        config = spec.config()
        config.name = spec.durable
        shared = await self.js.consumer_info(spec.stream, WORKER_CONSUMERS[domain].durable)
        config.ack_wait = shared.config.ack_wait
        config.max_deliver = shared.config.max_deliver
        config.max_ack_pending = shared.config.max_ack_pending
        await self.js.add_consumer(spec.stream, config)
