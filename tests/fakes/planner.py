"""In-memory saga store and bus, behaving like KV compare-and-set and a de-duplicating stream."""

from __future__ import annotations

from skiff_contracts.saga import Outgoing, SagaRecord
from skiff_extraction.router import Route
from skiff_planner.ports import RevisionConflict


class MemorySagaStore:
    def __init__(self) -> None:
        self.records: dict[str, tuple[SagaRecord, int]] = {}
        self.writes = 0

    async def create(self, record: SagaRecord) -> int | None:
        if record.trip_id in self.records:
            return None
        self.writes += 1
        self.records[record.trip_id] = (record, self.writes)
        return self.writes

    async def load(self, trip_id: str) -> tuple[SagaRecord, int] | None:
        return self.records.get(trip_id)

    async def update(self, record: SagaRecord, revision: int) -> int:
        current = self.records.get(record.trip_id)
        if current is None or current[1] != revision:
            raise RevisionConflict(record.trip_id)
        self.writes += 1
        self.records[record.trip_id] = (record, self.writes)
        return self.writes

    async def trip_ids(self) -> list[str]:
        return list(self.records)


class MemoryBus:
    """Keeps what was published; a repeated message id is stored once, like JetStream."""

    def __init__(self) -> None:
        self.published: list[Outgoing] = []
        self.ids: set[str] = set()
        self.fail_after: int | None = None

    async def publish(self, item: Outgoing) -> None:
        if self.fail_after is not None and len(self.published) >= self.fail_after:
            raise ConnectionError("bus down")
        if item.message_id in self.ids:
            return
        self.ids.add(item.message_id)
        self.published.append(item)


class FixedRouter:
    def __init__(self, route: Route) -> None:
        self.fixed = route

    def route(self, text: str) -> Route:
        return self.fixed
