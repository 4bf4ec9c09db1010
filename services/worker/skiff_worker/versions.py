"""Adapter versions a worker serves besides its own model, loaded and dropped while it runs.

A fine-tuned version of the worker's base model is a LoRA adapter, registered by the flywheel
(`skiff flywheel register`) with the adapter's directory and the sha256 of its manifest. At
every heartbeat the worker lists its task's cards and serves each adapter version

* of its own task, base model and engine kind,
* once it receives work (`shadow`, `canary`, `champion`); a served version that goes back
  to `candidate` stays loaded (warm for a rollback, and it receives nothing),
* until it is `retired`.

Serving one means: the adapter file checked against the card's checksum, loaded into the
engine under the version's slug (no restart: llama.cpp loads it in-process, SGLang through
`/load_lora_adapter`), an `Extractor` with the card's prompt version and threshold, warmed up,
then the version's own durable consumer subscribed. A version that cannot be served (a
missing or altered file, an engine error, a prompt version this code lacks) is logged and
tried again at the next heartbeat; its commands wait in its consumer meanwhile, none is
lost. A retired version is unsubscribed and its adapter unloaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from skiff_contracts.domains import Domain
from skiff_contracts.registry import ModelCard
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_extraction.pricing import ModelPrice
from skiff_flywheel.artifacts import adapter_path
from skiff_inference.engine import Engine, EngineError

log = structlog.get_logger()

RECEIVING = frozenset({"shadow", "canary", "champion"})


@dataclass(frozen=True)
class Fleet:
    """What this worker is: only adapters of the same task, base model and engine fit it."""

    task: str
    base_model: str
    engine_kind: str
    own_model_id: str


def fits(card: ModelCard, fleet: Fleet) -> bool:
    return (
        card.adapter is not None
        and card.model_id != fleet.own_model_id
        and card.task == fleet.task
        and card.base_model == fleet.base_model
        and card.engine == fleet.engine_kind
    )


def plan(
    cards: Iterable[ModelCard], fleet: Fleet, served: Iterable[str]
) -> tuple[list[ModelCard], list[str]]:
    """Which fitting versions to start serving, and which served ones to stop (retired or
    gone)."""
    serving = set(served)
    by_id = {card.model_id: card for card in cards if fits(card, fleet)}
    start = [
        card
        for model_id, card in sorted(by_id.items())
        if model_id not in serving and card.status in RECEIVING
    ]
    stop = sorted(m for m in serving if m not in by_id or by_id[m].status == "retired")
    return start, stop


Subscribe = Callable[[str], Awaitable[None]]  # start consuming a model id's commands
Unsubscribe = Callable[[str], Awaitable[None]]


@dataclass
class AdapterVersions:
    """Loads, serves and drops adapter versions on one engine, as `plan` decides."""

    engine: Engine
    fleet: Fleet
    versions: dict[str, Extractor]  # shared with the DomainWorker that routes to them
    subscribe: Subscribe
    unsubscribe: Unsubscribe
    make_extractor: Callable[[ModelCard], Extractor]
    failures: dict[str, str] = field(default_factory=dict)

    async def reconcile(self, cards: Iterable[ModelCard]) -> None:
        cards = list(cards)
        for card in cards:  # a served version's threshold follows its card (skiff calibrate)
            if (served := self.versions.get(card.model_id)) is not None:
                served.confidence_threshold = card.confidence_threshold
        start, stop = plan(cards, self.fleet, self.versions)
        for model_id in stop:
            await self.unsubscribe(model_id)
            dropped = self.versions.pop(model_id, None)
            if dropped is not None and dropped.adapter is not None:
                try:  # its weights (llama.cpp) or its slot on the server (SGLang)
                    await self.engine.unload_adapter(dropped.adapter)
                except EngineError as error:
                    log.warning("adapter not unloaded", model=model_id, error=str(error))
            log.info("adapter version dropped", model=model_id)
        for card in start:
            try:
                await self._serve(card)
            except Exception as error:  # one bad card must not stop the others or the beat
                self.failures[card.model_id] = f"{type(error).__name__}: {error}"
                log.warning("adapter version not served", model=card.model_id, error=str(error))

    async def _serve(self, card: ModelCard) -> None:
        # Verifying the files hashes them: off the event loop.
        path: Path = await asyncio.to_thread(adapter_path, card, self.fleet.engine_kind)
        await self.engine.load_adapter(card.adapter_name, path)
        extractor = self.make_extractor(card)
        await extractor.warm_up()
        self.versions[card.model_id] = extractor  # before commands can arrive
        try:
            await self.subscribe(card.model_id)
        except BaseException:
            del self.versions[card.model_id]  # not served: tried again at the next beat
            raise
        self.failures.pop(card.model_id, None)
        log.info("adapter version serving", model=card.model_id, adapter=str(path))


def extractor_factory(
    engine: Engine, domain: Domain, prices: Mapping[str, ModelPrice], base_name: str
) -> Callable[[ModelCard], Extractor]:
    """How a card becomes an Extractor: its identity, prompt, threshold and adapter. An
    adapter version runs on the worker's base model, so unless the price table names it, it
    costs what `base_name` costs."""

    def make(card: ModelCard) -> Extractor:
        priced_as = card.name if card.name in prices else base_name
        return Extractor(
            engine=engine,
            domain=domain,
            identity=ModelIdentity(name=card.name, version=card.version, priced_as=priced_as),
            confidence_threshold=card.confidence_threshold,
            prompt_version=card.prompt_version,
            adapter=card.adapter_name,
            prices=prices,
        )

    return make
