"""The service's own small HTTP endpoint: `/metrics`, `/healthz`, `/readyz`.

- `/healthz` (liveness): 200 whenever the process's event loop answers.
- `/readyz` (readiness): 200 only when the broker is connected and the service's own
  readiness check says ready (the worker's engine warmed up, …); 503 otherwise, with why.
- `/metrics`: the process's Prometheus registry (OpenMetrics when the scraper asks for it).

It runs on `SKIFF_METRICS_HOST:SKIFF_METRICS_PORT` (default 0.0.0.0:9100, what the chart
probes; port 0 turns it off) inside the service's own event loop, on `asyncio.start_server`.
Why not `prometheus_client.start_http_server`: it serves from a thread, which could not
await the readiness check. Why not `AsgiFastStream` + uvicorn: it would run the service
under an ASGI server, changing how every `__main__` starts and stops, for three GET routes
(it costs ~0.2 s of imports and ~1 MiB here; measured, not the deciding factor). Model
calls run in threads (`asyncio.to_thread`), so the loop stays free to answer probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Protocol

import structlog

from skiff_runtime.metrics import Metrics, process_metrics
from skiff_runtime.settings import ServiceSettings

log = structlog.get_logger()

ReadyCheck = Callable[[], Awaitable[bool]] | Callable[[], bool]

REQUEST_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 2.0
BROKER_PING_S = 0.5
MAX_HEADERS = 64


class Pingable(Protocol):
    """What readiness needs of the broker (`NatsBroker.ping` has this shape)."""

    async def ping(self, timeout: float | None) -> bool: ...


class HealthServer:
    """The three routes on one listening socket; `start` binds, `stop` closes."""

    def __init__(
        self, *, ready: ReadyCheck, metrics: Metrics, broker: Pingable | None = None
    ) -> None:
        self._ready = ready
        self._metrics = metrics
        self._broker = broker
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful after binding port 0 in tests)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("not serving")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        """Bind and serve; a port already in use raises `OSError` (fail at start, loudly)."""
        self._server = await asyncio.start_server(self._serve, host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def readiness(self) -> tuple[bool, str]:
        """(ready, why): the broker first, then the service's own check."""
        if self._broker is not None and not await self._broker.ping(BROKER_PING_S):
            return False, "broker not connected"
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                result = self._ready()
                ready = await result if inspect.isawaitable(result) else result
        except Exception as error:  # a failing check means not ready, never a crash
            log.warning("readiness check failed", error=repr(error))
            return False, f"readiness check failed: {type(error).__name__}"
        return (True, "ready") if ready else (False, "service not ready")

    async def respond(self, method: str, path: str, accept: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if path == "/healthz":
            return 200, "text/plain; charset=utf-8", b"ok\n"
        if path == "/readyz":
            ready, why = await self.readiness()
            return (200 if ready else 503), "text/plain; charset=utf-8", f"{why}\n".encode()
        if path == "/metrics":
            body, content_type = self._metrics.exposition(accept)
            return 200, content_type, body
        return 404, "text/plain; charset=utf-8", b"not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                method, path, headers = await _read_request(reader)
            status, content_type, body = await self.respond(method, path, headers.get("accept", ""))
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                + ("Allow: GET, HEAD\r\n" if status == 405 else "")
                + "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except Exception as error:  # a bad or slow client must not disturb the service
            log.debug("health request dropped", error=repr(error))
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """The request line and headers of one HTTP/1.x request (no body is ever needed)."""
    method, target, _version = (await reader.readline()).decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many headers")
    return method.upper(), target.split("?", 1)[0], headers


@contextlib.asynccontextmanager
async def serving_health(
    settings: ServiceSettings,
    ready: ReadyCheck,
    metrics: Metrics | None = None,
    *,
    broker: Pingable | None = None,
) -> AsyncIterator[HealthServer | None]:
    """Serve `/metrics`, `/healthz` and `/readyz` for the block (None when the port is 0).

    `ready` is the service's own check (sync or async); with `broker`, readiness also
    requires it to be connected. Enter it before the slow start-up work (model load,
    warm-up) so liveness answers while readiness still says 503.
    """
    if settings.metrics_port == 0:
        yield None
        return
    server = HealthServer(
        ready=ready, metrics=metrics if metrics is not None else process_metrics(), broker=broker
    )
    await server.start(settings.metrics_host, settings.metrics_port)
    log.info("health endpoint serving", port=server.port)
    try:
        yield server
    finally:
        await server.stop()
