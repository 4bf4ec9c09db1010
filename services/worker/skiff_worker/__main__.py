"""`python -m skiff_worker`: settings → logging → engine (warmed up) → consume."""

from __future__ import annotations

import asyncio

import structlog

from skiff_extraction.pipeline import Extractor, ModelIdentity
from skiff_inference.factory import build_engine
from skiff_runtime.broker import connect
from skiff_runtime.logging import configure_logging
from skiff_worker.app import create_app
from skiff_worker.inventory_client import NatsInventory
from skiff_worker.service import DomainWorker
from skiff_worker.settings import WorkerSettings


async def main() -> None:
    settings = WorkerSettings()  # the domain comes from SKIFF_DOMAIN
    configure_logging(f"worker-{settings.domain}", settings.log_level, settings.log_format)
    log = structlog.get_logger()
    engine = build_engine(settings.engine)
    extractor = Extractor(
        engine=engine,
        domain=settings.domain,
        identity=ModelIdentity(name=settings.model_name, version=settings.model_version),
        confidence_threshold=settings.confidence_threshold,
    )
    await extractor.warm_up()
    log.info("engine warm", engine=engine.kind, model=engine.model)
    service = f"worker-{settings.domain}"
    supplier = await connect(settings, service, f"{service}-inventory")
    app, _ = create_app(settings, DomainWorker(extractor, NatsInventory(supplier)))
    try:
        await app.run()
    finally:
        await supplier.close()
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
