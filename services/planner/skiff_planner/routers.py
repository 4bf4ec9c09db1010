"""Routing a trip: the registry's router versions, their call records, the LLM tier's say.

Routing is the registry task `router.route`. Its champion routes every trip (the router
shipped with Skiff stands in while none is registered); shadows route the same text and
their answers are only recorded; a canary takes its share of trips, by a stable hash as
extraction's canaries do. A version's weights are the card's `adapter` file, checked
against `adapter_sha256` before it serves. Every decision leaves a `CallRecord` (task
`router.route`, redacted) for the registry's live metrics and the conversion loop.

When the serving router is unsure (a label in its uncertainty band, or nothing found) the
LLM tier decides (`llm.route`, reason `ambiguous`); its labels are checked. When the tier
does not decide either, the trip goes on with what the router was sure of, or, with
nothing, asks the user what to book.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from skiff_contracts.messages import RouteQuery
from skiff_contracts.registry import ROUTER_TASK, CallRecord, ModelCard, model_id_for
from skiff_extraction.llm_routing import after_llm
from skiff_extraction.router import (
    Embedder,
    Route,
    Router,
    RouterModel,
    SlmRouter,
)
from skiff_flywheel.call_records import route_record
from skiff_planner.ports import RouteEscalation
from skiff_planner.routing import RegistrySnapshot, bucket

log = structlog.get_logger()
# A version whose file failed its check is not read again for this long: the file is not
# re-hashed and the error not logged again on every trip, and a file put right is picked up.
RETRY_UNUSABLE_S = 60.0


class RouterFileError(ValueError):
    """A registered router's weights are missing or are not the file its card names."""


def shipped_model_id(router: Router) -> str:
    """The model id of a router that is not (yet) in the registry: its card's name."""
    card = getattr(getattr(router, "model", None), "card", None) or {}
    return model_id_for(ROUTER_TASK, card.get("name", "unregistered"), card.get("version", "0"))


@dataclass(frozen=True)
class Versions:
    """Who routes one trip: the serving router (champion or canary) and the shadows."""

    serving: tuple[str, Router]
    shadows: tuple[tuple[str, Router], ...] = ()


class RouterVersions:
    """Router versions by model id, loaded from their cards' files once."""

    def __init__(
        self,
        fallback: Router,
        load: Callable[[Path], Router],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fallback = (shipped_model_id(fallback), fallback)
        self.load = load
        self.clock = clock
        self.loaded: dict[str, Router] = {}
        self.failed_at: dict[str, float] = {}

    def _router(self, card: ModelCard) -> Router:
        if card.model_id not in self.loaded:
            path = Path(card.adapter or "")
            if not path.is_file():
                raise RouterFileError(f"{card.model_id}: no router file at {card.adapter!r}")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if card.adapter_sha256 and digest != card.adapter_sha256:
                raise RouterFileError(f"{card.model_id}: {path} is not the file its card names")
            self.loaded[card.model_id] = self.load(path)
        return self.loaded[card.model_id]

    def _usable(self, card: ModelCard | None) -> tuple[str, Router] | None:
        if card is None or card.status == "retired":
            return None
        failed = self.failed_at.get(card.model_id)
        if failed is not None and self.clock() - failed < RETRY_UNUSABLE_S:
            return None
        try:
            usable = card.model_id, self._router(card)
        except (RouterFileError, OSError, ValueError) as error:
            log.error("router version unusable", model_id=card.model_id, error=str(error))
            self.failed_at[card.model_id] = self.clock()
            return None
        self.failed_at.pop(card.model_id, None)
        return usable

    def for_trip(self, snapshot: RegistrySnapshot, trip_id: str) -> Versions:
        live = [c for c in snapshot.cards.values() if c.task == ROUTER_TASK]
        shadows = tuple(
            usable for c in sorted(live, key=lambda c: c.model_id)
            if c.status == "shadow" and (usable := self._usable(c)) is not None
        )  # fmt: skip
        for canary in sorted((c for c in live if c.status == "canary"), key=lambda c: c.model_id):
            taken = bucket(trip_id, "router", canary.model_id) < canary.canary_share
            if taken and (usable := self._usable(canary)) is not None:
                return Versions(usable, shadows)
        aliases = snapshot.aliases.get(ROUTER_TASK)
        champion = snapshot.cards.get(aliases.champion or "") if aliases else None
        return Versions(self._usable(champion) or self.fallback, shadows)


@dataclass(frozen=True)
class Routed:
    route: Route
    records: tuple[CallRecord, ...]


async def route_trip(
    versions: Versions,
    trip_id: str,
    text: str,
    escalation: RouteEscalation | None,
    *,
    attempt: int = 0,
) -> Routed:
    """The trip's route, and a call record for every router (and tier) that looked at it.
    `attempt` counts the user's answers: a trip routed again leaves new records."""
    model_id, router = versions.serving
    route = await asyncio.to_thread(router.route, text)
    records = [_record(trip_id, attempt, model_id, text, route, shadow=False)]
    for shadow_id, shadow in versions.shadows:
        shadow_route = await asyncio.to_thread(shadow.route, text)
        records.append(_record(trip_id, attempt, shadow_id, text, shadow_route, shadow=True))
    if route.decided or escalation is None:
        return Routed(route, tuple(records))
    query = RouteQuery(
        trip_id=trip_id, text=text, slm=route.labels, unsure=route.unsure, attempt=attempt
    )
    answer = await escalation.decide(query)
    if answer is None or not answer.decided:
        log.info("route undecided by the LLM tier", trip_id=trip_id, sure=route.labels)
    return Routed(after_llm(route, answer), tuple(records))


def _record(
    trip_id: str, attempt: int, model_id: str, text: str, route: Route, *, shadow: bool
) -> CallRecord:
    suffix = f":shadow:{model_id}" if shadow else ""
    return route_record(
        record_id=f"{trip_id}:route:{attempt}{suffix}", model_id=model_id, tier="slm",
        trip_id=trip_id,
        text=text, labels=route.labels, decided=route.decided, latency_ms=route.latency_ms,
        scores=dict(route.scores), shadow=shadow,
    )  # fmt: skip


def version_loader(embedder: Embedder | None) -> Callable[[Path], Router]:
    """Loads registered router files, every version sharing one embedder."""
    return lambda path: SlmRouter(RouterModel.load(path), embedder)
