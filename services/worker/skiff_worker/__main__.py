"""`python -m skiff_worker`: settings → logging → engine → serve: warm up, register the model
version (which provisions its consumer), then consume; heartbeat until retired, and at each
beat serve the adapter versions of this base model that the registry routes work to."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from skiff_extraction.cards import extraction_card
from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_inference.factory import build_engine
from skiff_inference.traced import TracedEngine
from skiff_runtime.broker import connect, identity
from skiff_runtime.logging import configure_logging
from skiff_runtime.service import serve
from skiff_worker.app import create_app
from skiff_worker.inventory_client import NatsInventory
from skiff_worker.registration import RegistryClient
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings
from skiff_worker.versions import AdapterVersions, Fleet, extractor_factory

log = structlog.get_logger()


async def main() -> None:
    settings = WorkerSettings()  # the domain comes from SKIFF_DOMAIN
    service = f"worker-{settings.domain}"
    configure_logging(service, settings.log_level, settings.log_format)
    engine = TracedEngine(build_engine(settings.engine), capture_content=settings.trace_content)
    extractor = Extractor(
        engine=engine,
        domain=settings.domain,
        identity=ModelIdentity(name=settings.model_name, version=settings.model_version),
        prices=settings.prices,  # the threshold is the registry card's (set at registration)
    )
    card, schema = extraction_card(
        settings.domain, name=settings.model_name, version=settings.model_version,
        base_model=settings.base_model, engine=settings.engine.kind, endpoint=settings.engine.url,
        owner=settings.model_owner,
    )  # fmt: skip
    connection = await connect(settings, service, f"{service}-side")
    registry = RegistryClient(connection, identity(settings, service))
    domain_worker = DomainWorker(extractor, NatsInventory(connection))
    worker = create_app(settings, domain_worker, card.model_id)
    adapters = AdapterVersions(
        engine=engine,
        fleet=Fleet(card.task, card.base_model, card.engine, card.model_id),
        versions=domain_worker.versions,
        subscribe=worker.subscribe_version,
        unsubscribe=worker.unsubscribe_version,
        make_extractor=extractor_factory(
            engine, settings.domain, settings.prices, settings.model_name
        ),
    )

    own_retired = False

    async def beat() -> None:
        """Heartbeat every version served, serve what the registry routes to this base model,
        and stop taking the worker's own version's work once it is retired."""
        nonlocal own_retired
        if not own_retired:  # first: nothing about other versions may cost the worker its beat
            current = await registry.heartbeat(card.model_id)
            if current is not None:  # `skiff calibrate` may have moved it
                extractor.confidence_threshold = current.confidence_threshold
            if current is not None and current.status == "retired":
                own_retired = True
                log.warning("model version retired: no more extractions", model=card.model_id)
                await worker.model_subscriber.stop()
        for model_id in list(domain_worker.versions):
            await registry.heartbeat(model_id)
        if (cards := await registry.cards(card.task)) is not None:
            await adapters.reconcile(cards)

    async def beat_once() -> None:
        try:
            await beat()
        except Exception as error:  # a missed beat must not end the heartbeat (or the start)
            log.warning("heartbeat failed", model=card.model_id, error=repr(error))

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(settings.heartbeat_s)
            await beat_once()

    beating: list[asyncio.Task[None]] = []

    async def start_up() -> None:
        await extractor.warm_up()
        registered = await registry.register(card, schema)
        extractor.confidence_threshold = registered.confidence_threshold
        log.info("registered", model=registered.model_id, status=registered.status,
                 threshold=registered.confidence_threshold)  # fmt: skip

    @worker.app.after_startup
    async def serve_adapters_and_beat() -> None:  # subscribing needs the running broker
        await beat_once()
        beating.append(asyncio.create_task(heartbeat()))

    try:
        await serve(service, settings, worker.app, worker.broker, start_up=start_up)
    finally:
        for task in beating:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await connection.close()
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
