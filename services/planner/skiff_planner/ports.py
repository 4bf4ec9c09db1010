"""What the planner needs from the outside world, as protocols (adapters live in `adapters.py`)."""

from __future__ import annotations

from typing import Protocol

from skiff_contracts.messages import RouteAnswer, RouteQuery
from skiff_contracts.saga import Outgoing, SagaRecord
from skiff_planner.routing import RegistrySnapshot


class RevisionConflict(Exception):
    """Someone else changed the record since it was read; re-read and decide again."""


class SagaStore(Protocol):
    async def create(self, record: SagaRecord) -> int | None:
        """Store a new record; its revision, or None when the trip already exists."""

    async def load(self, trip_id: str) -> tuple[SagaRecord, int] | None: ...

    async def update(self, record: SagaRecord, revision: int) -> int:
        """Compare-and-set; raises `RevisionConflict` when `revision` is not the latest."""

    async def trip_ids(self) -> list[str]: ...


class RegistryView(Protocol):
    def snapshot(self) -> RegistrySnapshot:
        """The registry's cards and aliases as last seen (kept current by a KV watch)."""


class Bus(Protocol):
    async def publish(self, item: Outgoing, owner: str) -> None:
        """Publish an event or command durably, de-duplicated by its message id (events go
        to the subjects of the trip's `owner`)."""


class RouteEscalation(Protocol):
    async def decide(self, query: RouteQuery) -> RouteAnswer | None:
        """The LLM tier's checked routing decision; None when it did not answer in time."""
