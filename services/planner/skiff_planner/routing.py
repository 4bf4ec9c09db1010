"""Which model version serves a trip's extraction, by the registry (pure).

The champion takes the work, except for the share of trips a canary takes — decided by a
hash of trip and domain, so a replayed decision is the same decision. Shadows get a mirrored
copy whose answer is recorded and never used. No champion and no canary: no micro-SLM
serves the task, and the step goes to the LLM tier as `no_model`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from skiff_contracts.domains import Domain
from skiff_contracts.registry import ModelCard, TaskAliases


@dataclass(frozen=True)
class RegistrySnapshot:
    cards: Mapping[str, ModelCard]
    aliases: Mapping[str, TaskAliases]


@dataclass(frozen=True)
class Assignment:
    model_id: str | None
    shadows: tuple[str, ...] = ()


def bucket(trip_id: str, domain: str, model_id: str) -> float:
    """A stable number in [0, 1) per trip, domain and model."""
    digest = hashlib.sha256(f"{trip_id}|{domain}|{model_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(snapshot: RegistrySnapshot, trip_id: str, domain: Domain) -> Assignment:
    task = f"{domain}.extract"
    live = [c for c in snapshot.cards.values() if c.task == task and c.status != "retired"]
    shadows = tuple(sorted(c.model_id for c in live if c.status == "shadow"))
    for canary in sorted((c for c in live if c.status == "canary"), key=lambda c: c.model_id):
        if bucket(trip_id, domain, canary.model_id) < canary.canary_share:
            return Assignment(canary.model_id, shadows)
    aliases = snapshot.aliases.get(task)
    champion = snapshot.cards.get(aliases.champion or "") if aliases else None
    if champion is not None and champion.status != "retired":
        return Assignment(champion.model_id, shadows)
    return Assignment(None, shadows)
