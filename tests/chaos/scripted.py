"""Entry points for crash tests: the real planner, worker and LLM-worker apps, composed with a
fixed router and scripted engines so a saga takes seconds, not minutes. Everything else —
NATS, JetStream, KV, the inventory and its SQLite file, process death — is real.

    python -m tests.chaos.scripted planner
    python -m tests.chaos.scripted worker      (SKIFF_DOMAIN=flights …)
    python -m tests.chaos.scripted llm-worker

Scripts and faults, from the environment:

- `CHAOS_SCRIPT`: JSON `{"<domain>": [["<text>", {draft}], …]}`, per domain the draft to answer
  when the request (the prompt's last message) contains `<text>`; the first match wins, and
  without one the domain's draft for `TRIP_TEXT`. The LLM worker reads `CHAOS_LLM_SCRIPT`
  the same way, its domain told by the schema it is asked to fill.
- `CHAOS_ENGINE_DELAY_S`: seconds each scripted call takes (0.2); `CHAOS_DOMAIN_DELAY_S`:
  JSON `{"<domain>": seconds}`, per domain instead (to order replies of parallel steps).
- `CHAOS_ROUTE`: JSON `{"domains": […], "unsupported": […]}` instead of the four domains.
- `CHAOS_CRASH_AT_ACCEPT`: a file path; the planner dies (exit 137) just before it first
  publishes an accepted answer, after the decision is stored, and leaves the file behind so
  that the restarted planner does not die again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.registry import AnswerAccepted
from skiff_contracts.saga import Outgoing
from skiff_extraction.cards import extraction_card
from skiff_extraction.llm_tier import ResolverSettings
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.resolver import Resolver
from skiff_extraction.router import Route
from skiff_inference.engine import ChatMessage, Generation
from skiff_llm_worker.app import create_app as create_llm_worker
from skiff_llm_worker.service import LlmWorker
from skiff_llm_worker.settings import LlmWorkerSettings
from skiff_planner.adapters import JetStreamBus
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


Script = dict[str, list[tuple[str, dict[str, Any]]]]
# A field only that domain's draft has: how the LLM worker's engine knows what it is asked.
_DOMAIN_FIELD: dict[str, Domain] = {
    "origin": "flights", "location": "hotels", "pickup_city": "cars", "coverage": "insurance",
}  # fmt: skip


def script_from(variable: str) -> Script:
    rules = json.loads(os.environ.get(variable, "{}"))
    return {domain: [(text, draft) for text, draft in pairs] for domain, pairs in rules.items()}


class ScriptedEngine:
    """Answers each domain's draft for `TRIP_TEXT` (or the script's, by the request's text)
    after a fixed delay; `domain` None: the domain the schema belongs to."""

    kind = "scripted"
    model = "scripted"

    def __init__(self, domain: Domain | None, delay_s: float, script: Script | None = None):
        self.domain = domain
        self.delay_s = delay_s
        self.script = script or {}

    def draft_for(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> Any:
        properties = schema.get("properties", {})
        domain = self.domain or next(d for f, d in _DOMAIN_FIELD.items() if f in properties)
        text = str(messages[-1]["content"]) if messages else ""
        for wanted, draft in self.script.get(domain, []):
            if wanted in text:
                return draft
        return DRAFTS[domain]

    async def generate_json(
        self, messages: Sequence[ChatMessage], schema: Mapping[str, Any], **_: Any
    ) -> Generation:
        started = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        draft = self.draft_for(messages, schema)
        raw = json.dumps(draft)
        return Generation(
            value=draft, raw=raw, tokens_in=100, tokens_out=30, token_logprobs=(),
            latency_ms=1000 * (time.perf_counter() - started), engine=self.kind, model=self.model,
        )  # fmt: skip

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        return None


class FixedRouter:
    def __init__(self) -> None:
        chosen = json.loads(os.environ.get("CHAOS_ROUTE", "{}"))
        self.fixed = Route(
            tuple(chosen.get("domains", DOMAINS)), tuple(chosen.get("unsupported", ()))
        )

    def route(self, text: str) -> Route:
        return self.fixed


def crash_at_accept(marker: Path) -> None:
    """Die like a killed process right before the first accepted answer goes out."""
    publish = JetStreamBus.publish

    def first_time(record_id: str) -> bool:
        if marker.exists():
            return False
        marker.write_text(record_id)
        return True

    async def publish_or_die(self: JetStreamBus, item: Outgoing, owner: str) -> None:
        if isinstance(item, AnswerAccepted) and first_time(item.record_id):
            os._exit(137)
        await publish(self, item, owner)

    JetStreamBus.publish = publish_or_die  # type: ignore[method-assign]


async def planner() -> None:
    settings = PlannerSettings()
    configure_logging("planner", settings.log_level, "json")
    if marker := os.environ.get("CHAOS_CRASH_AT_ACCEPT"):
        crash_at_accept(Path(marker))
    app, _ = create_planner(settings, FixedRouter())
    await app.run()


MODEL_NAME, MODEL_VERSION = "scripted", "chaos"


async def worker() -> None:
    settings = WorkerSettings()
    service = f"worker-{settings.domain}"
    configure_logging(service, settings.log_level, "json")
    delay = float(os.environ.get("CHAOS_ENGINE_DELAY_S", "0.2"))
    delay = json.loads(os.environ.get("CHAOS_DOMAIN_DELAY_S", "{}")).get(settings.domain, delay)
    engine = ScriptedEngine(settings.domain, delay, script_from("CHAOS_SCRIPT"))
    extractor = Extractor(engine, settings.domain, ModelIdentity(MODEL_NAME, MODEL_VERSION))
    card, schema = extraction_card(
        settings.domain, name=MODEL_NAME, version=MODEL_VERSION, base_model="scripted",
        engine="scripted", endpoint=None, threshold=None, owner="chaos",
    )  # fmt: skip
    connection = await connect(settings, service, f"{service}-side")
    running = create_worker(
        settings, DomainWorker(extractor, NatsInventory(connection)), card.model_id
    )
    await RegistryClient(connection, "worker-" + card.task.split(".")[0]).register(card, schema)
    await running.app.run()


LLM_NAME, LLM_VERSION = "scripted-llm", "chaos"


async def llm_worker() -> None:
    settings = LlmWorkerSettings()
    configure_logging("llm-worker", settings.log_level, "json")
    engine = ScriptedEngine(None, 0.1, script_from("CHAOS_LLM_SCRIPT"))
    resolver = Resolver(
        engine=engine,  # type: ignore[arg-type]
        identity=ModelIdentity(LLM_NAME, LLM_VERSION, tier="llm"),
        settings=ResolverSettings(candidates=2, budget_s=20.0),
    )
    app, _ = create_llm_worker(settings, LlmWorker(resolver))
    await app.run()


if __name__ == "__main__":
    entry = {"planner": planner, "worker": worker, "llm-worker": llm_worker}[sys.argv[1]]
    asyncio.run(entry())
