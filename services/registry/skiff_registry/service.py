"""The registry's API: contract request in, contract reply out. Never imports NATS.

Cards live by `<task>.<slug>`, aliases by task, schemas by `<schema_id>.v<version>`; every
change is read → decide (`rollout`) → compare-and-set, re-decided from fresh reads when a
concurrent writer got there first. The aliases are written first (they are what routes
work), then the statuses, then the history entries, each with a deterministic message id,
so a change interrupted half-way is completed by `reconcile` at the next start.
Bad input is a `Refused` reply, never an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from skiff_contracts.base import utc_now
from skiff_contracts.domains import DOMAINS, DRAFTS, Domain, RouteLabels
from skiff_contracts.problems import Problem
from skiff_contracts.registry import (
    ROUTER_TASK,
    Ack,
    AliasMove,
    GetHistory,
    GetModel,
    GetSeries,
    Heartbeat,
    History,
    ListModels,
    ListSchemas,
    ModelCard,
    ModelList,
    ModelMetrics,
    ModelStatus,
    ModelView,
    Promote,
    Refused,
    RegisterModel,
    Retire,
    Rollback,
    RolloutMode,
    SchemaEntry,
    SchemaList,
    SchemaRef,
    Series,
    SetThreshold,
    TaskAliases,
    TaskPoint,
    model_id_for,
    schema_hash,
    slug_of,
)
from skiff_registry import compat, gates, rollout
from skiff_registry.keys import card_key, schema_key
from skiff_registry.ports import HistoryLog, Provisioner, RevisionConflict, Table, Versioned

log = structlog.get_logger()

Reply = Ack | Refused | ModelView | ModelList | History | SchemaList | Series
R = TypeVar("R")
ATTEMPTS = 8
ROLLOUT = "rollout"  # `who` of the registry's automatic rollout moves


@dataclass(frozen=True)
class Contract:
    """A task's output contract in code; `domain` for extraction tasks, whose versions each
    get a durable consumer."""

    schema_id: str
    schema: dict[str, Any]
    domain: Domain | None = None


def contracts() -> dict[str, Contract]:
    """The tasks with an output contract in code: one extraction per domain, and routing."""
    table = {
        f"{d}.extract": Contract(f"{d}.draft", DRAFTS[d].model_json_schema(), d) for d in DOMAINS
    }
    table[ROUTER_TASK] = Contract("router.labels", RouteLabels.model_json_schema())
    return table


def contract_tasks() -> tuple[str, ...]:
    return tuple(contracts())


def move_id(move: AliasMove) -> str:
    """The history entry's message id: the same entry appended twice is stored once."""
    return f"{move.task}:{hashlib.sha256(move.model_dump_json().encode()).hexdigest()[:24]}"


def _refused_not_found(model_id: str) -> Refused:
    return Refused(code="not_found", message=f"no model {model_id!r} is registered")


async def _retry(attempt: Callable[[], Awaitable[R]]) -> R:
    """Run a read-decide-write attempt again when a compare-and-set lost a race."""
    for n in range(ATTEMPTS):
        try:
            return await attempt()
        except RevisionConflict:
            await asyncio.sleep(0.01 * 2**n)
    raise RevisionConflict(f"still conflicting after {ATTEMPTS} attempts")


class Registry:
    """Model cards, schemas and aliases with their history, over the ports."""

    def __init__(
        self,
        cards: Table[ModelCard],
        aliases: Table[TaskAliases],
        schemas: Table[SchemaEntry],
        metrics: Table[ModelMetrics],
        series: Table[Series],
        history: HistoryLog,
        provisioner: Provisioner,
        *,
        clock: Callable[[], datetime] = utc_now,
        rollout_gates: gates.Gates | None = None,
    ) -> None:
        self.cards = cards
        self.aliases = aliases
        self.schemas = schemas
        self.metrics = metrics
        self.series = series
        self.history = history
        self.provisioner = provisioner
        self.clock = clock
        self.gates = rollout_gates or gates.Gates()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, task: str) -> asyncio.Lock:
        return self._locks.setdefault(task, asyncio.Lock())

    async def handle(self, request: BaseModel) -> Reply:
        """Answer one request of `REGISTRY_REQUEST`."""
        try:
            return await self._dispatch(request)
        except RevisionConflict as error:
            return Refused(code="conflict", message=f"concurrent changes, retry: {error}")

    async def _dispatch(self, request: BaseModel) -> Reply:
        if isinstance(request, RegisterModel):
            return await self.register(request)
        if isinstance(request, Heartbeat):
            return await self.heartbeat(request.model_id)
        if isinstance(request, Promote):
            return await self.promote(request)
        if isinstance(request, Rollback):
            return await self.rollback(request)
        if isinstance(request, Retire):
            return await self.retire(request)
        if isinstance(request, SetThreshold):
            return await self.set_threshold(request)
        if isinstance(request, GetModel):
            return await self.get_model(request.model_id)
        if isinstance(request, ListModels):
            return await self.list_models(request.task)
        if isinstance(request, GetHistory):
            return await self.get_history(request.task)
        if isinstance(request, ListSchemas):
            return SchemaList(schemas=tuple(await self._schema_entries()))
        if isinstance(request, GetSeries):
            return await self.get_series(request.task)
        return Refused(code="invalid", message=f"unknown request {type(request).__name__}")

    # --- schemas ------------------------------------------------------------------------------

    async def register_contracts(self) -> list[SchemaRef]:
        """Store each task's contract from code (v1, or the next version if the code moved)."""
        return [await self._schema_version(c.schema_id, c.schema) for c in contracts().values()]

    async def _schema_entries(self) -> list[SchemaEntry]:
        entries = await self.schemas.values()
        return sorted(entries, key=lambda e: (e.ref.schema_id, e.ref.version))

    async def _schema_version(self, schema_id: str, schema: dict[str, Any]) -> SchemaRef:
        """The version under which this exact schema is stored, storing it when new."""
        digest = schema_hash(schema)
        while True:
            versions = [e.ref for e in await self._schema_entries() if e.ref.schema_id == schema_id]
            for ref in versions:
                if ref.sha256 == digest:
                    return ref
            ref = SchemaRef(
                schema_id=schema_id, version=max((r.version for r in versions), default=0) + 1,
                sha256=digest,
            )  # fmt: skip
            if await self.schemas.create(schema_key(ref), SchemaEntry(ref=ref, json_schema=schema)):
                log.info("schema stored", schema_id=schema_id, version=ref.version)
                return ref

    # --- registration -------------------------------------------------------------------------

    def _check_card(self, request: RegisterModel) -> Refused | None:
        card = request.card
        contract = contracts().get(card.task)
        if contract is None:
            tasks = ", ".join(contract_tasks())
            return Refused(code="invalid", message=f"no contract for task {card.task!r} ({tasks})")
        if card.model_id != model_id_for(card.task, card.name, card.version):
            expected = model_id_for(card.task, card.name, card.version)
            return Refused(code="invalid", message=f"model_id must be {expected!r}")
        if not slug_of(card.model_id):
            return Refused(code="invalid", message="name and version make an empty slug")
        if schema_hash(request.json_schema) != card.output_schema.sha256:
            return Refused(code="invalid", message="output_schema.sha256 is not json_schema's hash")
        if card.output_schema.schema_id != contract.schema_id:
            problem = Problem(
                code="incompatible_schema.schema_id",
                message=f"the task's contract is {contract.schema_id!r}",
                field="output_schema.schema_id",
            )
            return Refused(
                code="incompatible_schema", message="another schema", problems=(problem,)
            )
        if problems := compat.check(contract.schema, request.json_schema):
            return Refused(
                code="incompatible_schema",
                message=f"not compatible with {contract.schema_id}: "
                + "; ".join(p.message for p in problems),
                problems=problems,
            )
        return None

    async def register(self, request: RegisterModel) -> Reply:
        """Idempotent: the same model id is the same card (`last_seen` refreshed)."""
        if refused := self._check_card(request):
            return refused
        card = request.card
        domain = contracts()[card.task].domain
        key = card_key(card.model_id)
        async with self._lock(card.task):
            stored = await self.cards.get(key)
            if stored is not None and (refused := self._same_model(stored.value, card)):
                return refused
            if stored is not None and stored.value.status == "retired":
                return Refused(code="retired", message=f"{card.model_id} is retired")
            if domain is not None:  # an extraction version: its own durable consumer
                await self.provisioner.provision(domain, card.slug)
            created = False
            if stored is None:
                ref = await self._schema_version(card.output_schema.schema_id, request.json_schema)
                now = self.clock()
                fresh = card.model_copy(
                    update={"output_schema": ref, "status": "candidate", "created_at": now,
                            "last_seen": now}
                )  # fmt: skip
                created = await self.cards.create(key, fresh) is not None
            move = await self._bootstrap_if_first(card.task, card.model_id)
            current = await self._touch(key)
        if current is None:
            return _refused_not_found(card.model_id)
        if created:
            log.info("model registered", model_id=card.model_id, status=current.status)
        return Ack(card=current, move=move, created=created)

    @staticmethod
    def _same_model(stored: ModelCard, card: ModelCard) -> Refused | None:
        if stored.model_id != card.model_id:
            return Refused(
                code="conflict",
                message=f"{card.model_id} has the same slug as {stored.model_id}; rename it",
            )
        if stored.output_schema.sha256 != card.output_schema.sha256:
            return Refused(
                code="conflict",
                message=f"{card.model_id} is registered with another output schema; "
                "register the new schema as a new version",
            )
        return None

    async def _bootstrap_if_first(self, task: str, model_id: str) -> AliasMove | None:
        change = rollout.bootstrap(task, model_id, self.clock())
        if await self.aliases.create(task, change.aliases) is None:
            return None
        await self._finish(change)
        log.info("bootstrap champion", task=task, model_id=model_id)
        return change.moves[0]

    async def _touch(self, key: str) -> ModelCard | None:
        """Refresh `last_seen`: best effort, a lost race means someone else just wrote it."""
        for _ in range(3):
            stored = await self.cards.get(key)
            if stored is None:
                return None
            touched = stored.value.model_copy(update={"last_seen": self.clock()})
            try:
                await self.cards.update(key, touched, stored.revision)
                return touched
            except RevisionConflict:
                continue
        stored = await self.cards.get(key)
        return stored.value if stored else None

    async def heartbeat(self, model_id: str) -> Reply:
        """The card as stored, `last_seen` refreshed: a retired worker learns it here."""
        if await self._card(model_id) is None:
            return _refused_not_found(model_id)
        card = await self._touch(card_key(model_id))
        return Ack(card=card) if card is not None else _refused_not_found(model_id)

    # --- rollout ------------------------------------------------------------------------------

    async def _card(self, model_id: str) -> Versioned[ModelCard] | None:
        stored = await self.cards.get(card_key(model_id))
        return stored if stored is not None and stored.value.model_id == model_id else None

    async def _aliases(self, task: str) -> Versioned[TaskAliases] | None:
        return await self.aliases.get(task)

    @staticmethod
    def _check_who(who: str, why: str) -> Refused | None:
        if not who.strip() or not why.strip():
            return Refused(code="invalid", message="say who makes the change and why")
        return None

    async def promote(self, request: Promote) -> Reply:
        if refused := self._check_who(request.who, request.why):
            return refused
        stored = await self._card(request.model_id)
        if stored is None:
            return _refused_not_found(request.model_id)
        task = stored.value.task

        async def attempt() -> Reply:
            card = await self._card(request.model_id)
            aliases = await self._aliases(task)
            if card is None:
                return _refused_not_found(request.model_id)
            current = aliases.value if aliases else TaskAliases(task=task)
            change = rollout.promote(
                current, card.value, request.to, request.canary_share,
                who=request.who, why=request.why, at=self.clock(),
            )  # fmt: skip
            return await self._apply(task, aliases, change, request.model_id)

        async with self._lock(task):
            return await _retry(attempt)

    async def rollback(self, request: Rollback) -> Reply:
        if refused := self._check_who(request.who, request.why):
            return refused
        if request.task not in contracts():
            return Refused(code="invalid", message=f"no such task {request.task!r}")

        async def attempt() -> Reply:
            aliases = await self._aliases(request.task)
            current = aliases.value if aliases else TaskAliases(task=request.task)
            history = await self.history.read(request.task)
            cards = await self.cards.values()
            retired = {c.model_id for c in cards if c.status == "retired"}
            automatic = {c.model_id for c in cards if c.rollout == "auto"}
            change = rollout.rollback(
                current, history, retired, automatic, who=request.who, why=request.why,
                at=self.clock(),
            )  # fmt: skip
            target = change.aliases.champion if not isinstance(change, Refused) else None
            return await self._apply(request.task, aliases, change, target)

        async with self._lock(request.task):
            return await _retry(attempt)

    async def retire(self, request: Retire) -> Reply:
        if refused := self._check_who(request.who, request.why):
            return refused
        stored = await self._card(request.model_id)
        if stored is None:
            return _refused_not_found(request.model_id)
        task = stored.value.task

        async def attempt() -> Reply:
            card = await self._card(request.model_id)
            if card is None:
                return _refused_not_found(request.model_id)
            if card.value.status == "retired":
                return Ack(card=card.value)
            aliases = await self._aliases(task)
            current = aliases.value if aliases else TaskAliases(task=task)
            change = rollout.retire(
                current, card.value, who=request.who, why=request.why, at=self.clock()
            )
            return await self._apply(task, aliases, change, request.model_id)

        async with self._lock(task):
            return await _retry(attempt)

    async def set_threshold(self, request: SetThreshold) -> Reply:
        """The card's confidence threshold and where it came from; workers serving the
        version apply it at their next heartbeat."""
        calibration = request.calibration
        if refused := self._check_who(calibration.who, calibration.data):
            return refused
        if calibration.threshold is not None and not 0.0 <= calibration.threshold <= 1.0:
            return Refused(code="invalid", message="a threshold lies between 0 and 1")
        update = {"confidence_threshold": calibration.threshold, "calibration": calibration}

        async def attempt() -> Reply:
            stored = await self._card(request.model_id)
            if stored is None:
                return _refused_not_found(request.model_id)
            card = stored.value.model_copy(update=update)
            await self.cards.update(card_key(request.model_id), card, stored.revision)
            return Ack(card=card)

        return await _retry(attempt)

    async def demote(self, model_id: str, *, who: str, why: str) -> Reply:
        """Roll a shadow or canary back to `candidate` and halt its automatic rollout."""
        stored = await self._card(model_id)
        if stored is None:
            return _refused_not_found(model_id)
        task = stored.value.task

        async def attempt() -> Reply:
            card = await self._card(model_id)
            if card is None:
                return _refused_not_found(model_id)
            if card.value.status in ("retired", "champion"):
                return Refused(code="invalid", message=f"{model_id} is {card.value.status}")
            aliases = await self._aliases(task)
            current = aliases.value if aliases else TaskAliases(task=task)
            change = rollout.demote(current, card.value, who=who, why=why, at=self.clock())
            return await self._apply(task, aliases, change, model_id)

        async with self._lock(task):
            return await _retry(attempt)

    async def auto_rollout(self) -> list[tuple[gates.Step, Reply]]:
        """One round of automatic rollout: every task with an automatic challenger, its gates
        decided from the stored cards, aliases and live metrics, each step applied."""
        cards = await self.cards.values()
        tasks = sorted({c.task for c in cards if c.rollout == "auto" and c.status != "retired"})
        taken: list[tuple[gates.Step, Reply]] = []
        for task in tasks:
            aliases = await self._aliases(task)
            champion = aliases.value.champion if aliases else None
            mine = [c for c in cards if c.task == task]
            metrics = {}
            for card in mine:
                if (stored := await self.metrics.get(card_key(card.model_id))) is not None:
                    metrics[card.model_id] = stored.value
            for step in gates.decide(mine, champion, metrics, self.gates):
                if step.action == "demote":
                    reply = await self.demote(step.model_id, who=ROLLOUT, why=step.why)
                else:
                    promote = Promote(
                        model_id=step.model_id, to=step.action, who=ROLLOUT, why=step.why,
                        canary_share=step.share,
                    )  # fmt: skip
                    reply = await self.promote(promote)
                log.info("automatic rollout", model_id=step.model_id, to=step.action, why=step.why)
                taken.append((step, reply))
                if step.action == "champion":  # the other steps were decided against the old one
                    break
        return taken

    async def _apply(
        self,
        task: str,
        stored: Versioned[TaskAliases] | None,
        change: rollout.Change | Refused | None,
        subject: str | None,
    ) -> Reply:
        """Write a decided change: aliases (compare-and-set), then statuses, then history."""
        if isinstance(change, Refused):
            return change
        if change is None:
            card = await self._card(subject) if subject else None
            return Ack(card=card.value if card else None)
        if stored is None:
            if await self.aliases.create(task, change.aliases) is None:
                raise RevisionConflict(task)
        elif change.aliases != stored.value:
            await self.aliases.update(task, change.aliases, stored.revision)
        cards = await self._finish(change)
        moved = [f"{m.alias}: {m.from_model} → {m.to_model}" for m in change.moves]
        log.info("aliases moved", task=task, moves=moved)
        return Ack(card=cards.get(subject or ""), move=change.moves[0] if change.moves else None)

    async def _finish(self, change: rollout.Change) -> dict[str, ModelCard]:
        """The statuses and history entries of a change whose aliases are written."""
        written: dict[str, ModelCard] = {}
        for model_id, status in change.statuses.items():
            card = await self._set_status(
                model_id, status, change.canary_share.get(model_id), change.rollout.get(model_id)
            )
            if card is not None:
                written[model_id] = card
        for move in change.moves:
            await self.history.append(move, move_id(move))
        return written

    async def _set_status(
        self,
        model_id: str,
        status: ModelStatus,
        share: float | None,
        mode: RolloutMode | None = None,
    ) -> ModelCard | None:
        update: dict[str, Any] = {"status": status}
        if share is not None:
            update["canary_share"] = share
        if mode is not None:
            update["rollout"] = mode

        async def attempt() -> ModelCard | None:
            stored = await self._card(model_id)
            if stored is None:
                return None
            card = stored.value.model_copy(update=update)
            if card != stored.value:
                await self.cards.update(card_key(model_id), card, stored.revision)
            return card

        return await _retry(attempt)

    # --- reads --------------------------------------------------------------------------------

    async def _view(self, card: ModelCard) -> ModelView:
        metrics = await self.metrics.get(card_key(card.model_id))
        return ModelView(card=card, metrics=metrics.value if metrics else None)

    async def get_model(self, model_id: str) -> Reply:
        stored = await self._card(model_id)
        if stored is None:
            return _refused_not_found(model_id)
        return await self._view(stored.value)

    async def list_models(self, task: str | None) -> Reply:
        cards = sorted(await self.cards.values(), key=lambda c: (c.task, c.created_at))
        aliases = sorted(await self.aliases.values(), key=lambda a: a.task)
        if task is not None:
            cards = [c for c in cards if c.task == task]
            aliases = [a for a in aliases if a.task == task]
        views = await asyncio.gather(*(self._view(card) for card in cards))
        return ModelList(models=tuple(views), aliases=tuple(aliases))

    async def get_history(self, task: str) -> Reply:
        if task not in contracts():
            return Refused(code="invalid", message=f"no such task {task!r}")
        return History(task=task, moves=tuple(await self.history.read(task)))

    async def get_series(self, task: str | None) -> Reply:
        tasks = [task] if task is not None else list(contract_tasks())
        points: list[TaskPoint] = []
        for one in tasks:
            stored = await self.series.get(one)
            points.extend(stored.value.points if stored else ())
        return Series(task=task, points=tuple(points))

    # --- repair -------------------------------------------------------------------------------

    async def reconcile(self) -> list[str]:
        """Complete changes a crash interrupted: history entries, statuses. One line each."""
        done: list[str] = []
        cards = await self.cards.values()
        for task in contract_tasks():
            async with self._lock(task):
                done += await self._reconcile_task(task, [c for c in cards if c.task == task])
        return done

    async def _reconcile_task(self, task: str, cards: list[ModelCard]) -> list[str]:
        done = []
        stored = await self._aliases(task)
        history = await self.history.read(task)
        replayed = rollout.replay(task, history)
        if stored is None:
            if replayed == TaskAliases(task=task):
                return []
            await self.aliases.create(task, replayed)
            return [f"{task}: aliases restored from the history"]
        aliases = stored.value
        if aliases != replayed:
            why = "recorded at start-up: a change was interrupted before its history entry"
            moves = rollout.alias_moves(
                replayed, aliases, action="repair", who=rollout.REGISTRY, why=why,
                at=self.clock(), statuses={},
            )  # fmt: skip
            for move in moves:
                await self.history.append(move, move_id(move))
            done.append(f"{task}: {len(moves)} history entries repaired")
        by_id = {c.model_id: c for c in cards}
        champion = by_id.get(aliases.champion or "")
        if champion is not None and champion.status == "retired":
            change = rollout.retire(
                aliases, champion, who=rollout.REGISTRY, why="completing its retirement",
                at=self.clock(),
            )  # fmt: skip
            await self._apply(task, stored, change, champion.model_id)
            return [*done, f"{task}: retired champion {champion.model_id} removed"]
        for card in cards:
            is_champion = card.model_id == aliases.champion
            if is_champion and card.status != "champion":
                await self._set_status(card.model_id, "champion", None)
                done.append(f"{task}: {card.model_id} status champion")
            elif not is_champion and card.status == "champion":
                await self._set_status(card.model_id, "candidate", None)
                done.append(f"{task}: {card.model_id} status candidate")
        return done
