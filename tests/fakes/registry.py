"""In-memory registry ports: KV tables with compare-and-set, a de-duplicating history log,
a provisioner that remembers; plus builders of cards and call records for the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic

from skiff_contracts.domains import DRAFTS, Domain
from skiff_contracts.registry import (
    AliasMove,
    AnswerAccepted,
    CallRecord,
    ModelCard,
    ModelMetrics,
    RegisterModel,
    SchemaEntry,
    SchemaRef,
    Series,
    TaskAliases,
    model_id_for,
    schema_hash,
)
from skiff_registry.gates import Gates
from skiff_registry.ports import RevisionConflict, T, Versioned
from skiff_registry.service import Registry


class MemoryTable(Generic[T]):
    def __init__(self) -> None:
        self.rows: dict[str, Versioned[T]] = {}
        self.revision = 0

    def _write(self, key: str, value: T) -> int:
        self.revision += 1
        self.rows[key] = Versioned(value, self.revision)
        return self.revision

    async def get(self, key: str) -> Versioned[T] | None:
        return self.rows.get(key)

    async def create(self, key: str, value: T) -> int | None:
        return None if key in self.rows else self._write(key, value)

    async def update(self, key: str, value: T, revision: int) -> int:
        current = self.rows.get(key)
        if current is None or current.revision != revision:
            raise RevisionConflict(key)
        return self._write(key, value)

    async def put(self, key: str, value: T) -> int:
        return self._write(key, value)

    async def values(self) -> list[T]:
        return [row.value for row in self.rows.values()]


class MemoryHistory:
    def __init__(self) -> None:
        self.moves: list[AliasMove] = []
        self.ids: set[str] = set()

    async def append(self, move: AliasMove, msg_id: str) -> None:
        if msg_id not in self.ids:
            self.ids.add(msg_id)
            self.moves.append(move)

    async def read(self, task: str) -> list[AliasMove]:
        return [move for move in self.moves if move.task == task]


class MemoryProvisioner:
    def __init__(self) -> None:
        self.consumers: set[tuple[str, str]] = set()

    async def provision(self, domain: Domain, model_slug: str) -> None:
        self.consumers.add((domain, model_slug))


class MemoryRegistry(Registry):
    """The real service over in-memory ports, which the tests can look into."""

    def __init__(self, gates: Gates | None = None) -> None:
        self.card_table: MemoryTable[ModelCard] = MemoryTable()
        self.alias_table: MemoryTable[TaskAliases] = MemoryTable()
        self.log = MemoryHistory()
        self.provisioned = MemoryProvisioner()
        self.metric_table: MemoryTable[ModelMetrics] = MemoryTable()
        self.series_table: MemoryTable[Series] = MemoryTable()
        super().__init__(
            self.card_table,
            self.alias_table,
            MemoryTable[SchemaEntry](),
            self.metric_table,
            self.series_table,
            self.log,
            self.provisioned,
            rollout_gates=gates,
        )


def registration(
    domain: Domain = "flights",
    name: str = "smollm2-lora",
    version: str = "1",
    schema: dict[str, Any] | None = None,
) -> RegisterModel:
    """A worker's registration: its card and the output schema it decodes against."""
    schema = schema if schema is not None else DRAFTS[domain].model_json_schema()
    task = f"{domain}.extract"
    card = ModelCard(
        model_id=model_id_for(task, name, version), task=task, name=name, version=version,
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct", engine="llamacpp",
        output_schema=SchemaRef(schema_id=f"{domain}.draft", version=1, sha256=schema_hash(schema)),
        prompt_version="p1", owner="tests",
    )  # fmt: skip
    return RegisterModel(card=card, json_schema=schema)


AT = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def call(
    model_id: str,
    n: int,
    *,
    latency_ms: float = 100.0,
    valid: bool = True,
    reason: Any = None,
    tier: Any = "slm",
    shadow: bool = False,
    digest: str | None = "d",
    step: str = "flights.extract",
    task: str = "flights.extract",
    at: datetime = AT,
    record_id: str | None = None,
) -> CallRecord:
    """Call record number `n` (its trip is `trip-<n>`)."""
    return CallRecord(
        record_id=record_id or f"{model_id}:{n}:{'shadow' if shadow else 'live'}",
        model_id=model_id, task=task, tier=tier, trip_id=f"trip-{n}", step=step, valid=valid,
        reason=reason, latency_ms=latency_ms, tokens_in=100, tokens_out=20, cost_usd=0.001,
        shadow=shadow,        output_digest=digest if valid else None, occurred_at=at,
    )  # fmt: skip


def accepted(
    n: int,
    *,
    answered_by: Any = "slm",
    digest: str = "d",
    task: str = "flights.extract",
    at: datetime = AT,
    model_id: str = "flights.extract/smollm2-lora@1",
) -> AnswerAccepted:
    """The accepted answer of trip `trip-<n>` for `task`."""
    domain = task.split(".")[0]
    return AnswerAccepted(
        record_id=f"trip-{n}:{domain}:accepted", trip_id=f"trip-{n}", step=task, task=task,
        answered_by=answered_by, model_id=model_id, input_text="text", params={},
        output_digest=digest, occurred_at=at,
    )  # fmt: skip
