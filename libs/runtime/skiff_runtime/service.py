"""Running a service: tracing, the health/metrics endpoint, start-up work, then the app.

Every service's `__main__` ends in `serve(...)`, so they all expose `/healthz`, `/readyz`
and `/metrics` the same way and shut tracing down cleanly (flushing what is buffered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from faststream import FastStream
from faststream.nats import NatsBroker

from skiff_runtime.health import serving_health
from skiff_runtime.settings import ServiceSettings
from skiff_runtime.telemetry import configure_tracing


async def serve(
    service: str,
    settings: ServiceSettings,
    app: FastStream,
    broker: NatsBroker,
    *,
    start_up: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve health first (liveness answers during a slow start-up), run `start_up` (model
    warm-up, registration), then the app. Ready = start-up done and the broker connected."""
    provider = configure_tracing(service)
    started = asyncio.Event()
    try:
        async with serving_health(settings, started.is_set, broker=broker):
            if start_up is not None:
                await start_up()
            started.set()
            await app.run()
    finally:
        provider.shutdown()
