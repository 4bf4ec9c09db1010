"""Entry points for crash tests: the real planner and worker apps, composed with a fixed router
and a scripted engine so a saga takes seconds, not minutes. Everything else — NATS,
JetStream, KV, the inventory and its SQLite file, process death — is real.

    python -m tests.chaos.scripted planner
    python -m tests.chaos.scripted worker      (SKIFF_DOMAIN=flights …)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from skiff_contracts.domains import DOMAINS, Domain
from skiff_extraction.cards import extraction_card
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.router import Route
from skiff_inference.engine import ChatMessage, Generation
from skiff_planner.app import create_app as create_planner
from skiff_planner.settings import PlannerSettings
from skiff_runtime.broker import connect
from skiff_runtime.logging import configure_logging
from skiff_worker.app import create_app as create_worker
from skiff_worker.inventory_client import NatsInventory
from skiff_worker.registration import RegistryClient
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings

TRIP_TEXT = (
    "Fly from Boston to Denver on March 12th, back March 16th, 2 passengers. "
    "A hotel in Denver from March 12th to March 16th. Rent a compact car in Denver on "
    "March 12th. Basic travel insurance."
)
DRAFTS: dict[Domain, dict[str, Any]] = {
    "flights": {"origin": "Boston", "destination": "Denver", "departure_date": "March 12th",
                "return_date": "March 16th", "passengers": 2},
    "hotels": {"location": "Denver", "check_in_date": "March 12th", "check_out_date": "March 16th"},
    "cars": {"pickup_city": "Denver", "pickup_date": "March 12th", "car_type": "compact"},
    "insurance": {"coverage": "basic"},
}  # fmt: skip


class ScriptedEngine:
    """Answers each domain's draft for `TRIP_TEXT` after a fixed delay."""

    kind = "scripted"
    model = "scripted"

    def __init__(self, domain: Domain, delay_s: float) -> None:
        self.draft = DRAFTS[domain]
        self.delay_s = delay_s

    async def generate_json(
        self, messages: Sequence[ChatMessage], schema: Mapping[str, Any], **_: Any
    ) -> Generation:
        started = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        raw = json.dumps(self.draft)
        return Generation(
            value=self.draft, raw=raw, tokens_in=100, tokens_out=30, token_logprobs=(),
            latency_ms=1000 * (time.perf_counter() - started), engine=self.kind, model=self.model,
        )  # fmt: skip

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        return None


class FixedRouter:
    def route(self, text: str) -> Route:
        return Route(DOMAINS)


async def planner() -> None:
    settings = PlannerSettings()
    configure_logging("planner", settings.log_level, "json")
    app, _ = create_planner(settings, FixedRouter())
    await app.run()


MODEL_NAME, MODEL_VERSION = "scripted", "chaos"


async def worker() -> None:
    settings = WorkerSettings()
    service = f"worker-{settings.domain}"
    configure_logging(service, settings.log_level, "json")
    engine = ScriptedEngine(settings.domain, float(os.environ.get("CHAOS_ENGINE_DELAY_S", "0.2")))
    extractor = Extractor(engine, settings.domain, ModelIdentity(MODEL_NAME, MODEL_VERSION))
    card, schema = extraction_card(
        settings.domain, name=MODEL_NAME, version=MODEL_VERSION, base_model="scripted",
        engine="scripted", endpoint=None, threshold=None, owner="chaos",
    )  # fmt: skip
    connection = await connect(settings, service, f"{service}-side")
    running = create_worker(
        settings, DomainWorker(extractor, NatsInventory(connection)), card.model_id
    )
    await RegistryClient(connection).register(card, schema)
    await running.app.run()


if __name__ == "__main__":
    asyncio.run({"planner": planner, "worker": worker}[sys.argv[1]]())
