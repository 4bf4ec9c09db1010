"""In-memory saga store and bus, behaving like KV compare-and-set and a de-duplicating stream."""

from __future__ import annotations

from skiff_contracts.domains import DOMAINS
from skiff_contracts.registry import ModelCard, SchemaRef, TaskAliases, model_id_for
from skiff_contracts.saga import Outgoing, SagaRecord
from skiff_extraction.router import Route
from skiff_planner.ports import RevisionConflict
from skiff_planner.routing import RegistrySnapshot

OWNER = "web"  # the client identity the fakes' trips belong to


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
        self.owners: list[str] = []  # the owner each item went out for, in step with `published`
        self.ids: set[str] = set()
        self.fail_after: int | None = None

    async def publish(self, item: Outgoing, owner: str = "") -> None:
        if self.fail_after is not None and len(self.published) >= self.fail_after:
            raise ConnectionError("bus down")
        if item.message_id in self.ids:
            return
        self.ids.add(item.message_id)
        self.published.append(item)
        self.owners.append(owner)


class FixedRouter:
    def __init__(self, route: Route) -> None:
        self.fixed = route

    def route(self, text: str) -> Route:
        return self.fixed


def card(domain: str, name: str = "smol", version: str = "v1", **fields: object) -> ModelCard:
    task = f"{domain}.extract"
    return ModelCard(
        model_id=model_id_for(task, name, version), task=task, name=name, version=version,
        base_model="SmolLM2-135M-Instruct", engine="llamacpp",
        output_schema=SchemaRef(schema_id=f"{domain}.draft", version=1, sha256="x"),
        prompt_version="v1", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


class MemoryRegistry:
    """A registry view with one champion per domain unless told otherwise."""

    def __init__(self, *cards: ModelCard) -> None:
        self.cards = {c.model_id: c for c in cards} or {
            c.model_id: c for c in (card(d, status="champion") for d in DOMAINS)
        }
        self.aliases = {
            c.task: TaskAliases(task=c.task, champion=c.model_id)
            for c in self.cards.values()
            if c.status == "champion"
        }

    def snapshot(self) -> RegistrySnapshot:
        return RegistrySnapshot(dict(self.cards), dict(self.aliases))
