"""`python -m skiff_llm_worker`: settings → logging → engine → serve: wait for the LLM server
and warm it up, then consume."""

from __future__ import annotations

import asyncio

import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_fixed

from skiff_extraction.examples import ExampleBank
from skiff_extraction.llm_tier import build_llm_engine
from skiff_extraction.pipeline import ModelIdentity
from skiff_extraction.resolver import Resolver
from skiff_inference.engine import EngineError
from skiff_inference.traced import TracedEngine
from skiff_llm_worker.app import SERVICE, create_app
from skiff_llm_worker.service import LlmWorker
from skiff_llm_worker.settings import LlmWorkerSettings
from skiff_runtime.logging import configure_logging
from skiff_runtime.service import serve


def _transient(error: BaseException) -> bool:
    return isinstance(error, EngineError) and error.transient


async def main() -> None:
    settings = LlmWorkerSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    log = structlog.get_logger()
    engine = TracedEngine(build_llm_engine(settings.llm), capture_content=settings.trace_content)
    model = settings.llm.model or engine.model
    if model not in settings.prices:
        log.warning("no price for the LLM tier's model: its calls cost 0", model=model)
    resolver = Resolver(
        engine=engine,
        identity=ModelIdentity(name=model, version=settings.llm_version, tier="llm"),
        settings=settings.resolver,
        bank=ExampleBank.load(),
        prices=settings.prices,
    )

    async def start_up() -> None:
        # The LLM server may still be loading (the local stack starts both at once).
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_delay(settings.warm_up_timeout_s),
            wait=wait_fixed(1.0),
            reraise=True,
        ):
            with attempt:
                await resolver.warm_up()
        log.info("LLM tier ready", engine=engine.kind, model=model, url=settings.llm.url)

    app, broker = create_app(settings, LlmWorker(resolver))
    try:
        await serve(SERVICE, settings, app, broker, start_up=start_up)
    finally:
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
