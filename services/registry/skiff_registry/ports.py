"""What the registry needs from the outside world, as protocols (adapters in `adapters.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from skiff_contracts.domains import Domain
from skiff_contracts.registry import AliasMove

T = TypeVar("T", bound=BaseModel)


class RevisionConflict(Exception):
    """Someone else changed the key since it was read; re-read and decide again."""


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A stored value with the revision a compare-and-set must name."""

    value: T
    revision: int


class Table(Protocol[T]):
    """Typed values by key, every write that may race a compare-and-set."""

    async def get(self, key: str) -> Versioned[T] | None: ...

    async def create(self, key: str, value: T) -> int | None:
        """Store a new key; its revision, or None when the key exists."""

    async def update(self, key: str, value: T, revision: int) -> int:
        """Compare-and-set; raises `RevisionConflict` when `revision` is not the latest."""

    async def put(self, key: str, value: T) -> int:
        """Write whatever is there (for values derived from compare-and-set state)."""

    async def values(self) -> list[T]: ...


class HistoryLog(Protocol):
    """Each task's append-only alias history."""

    async def append(self, move: AliasMove, msg_id: str) -> None:
        """Append once: the same `msg_id` appended twice is stored once."""

    async def read(self, task: str) -> list[AliasMove]: ...


class Provisioner(Protocol):
    async def provision(self, domain: Domain, model_slug: str) -> None:
        """Create (or keep) the durable consumer of one model version's extraction commands."""
