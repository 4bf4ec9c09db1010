"""The registry app run in the test's process, and helpers to talk to it over real NATS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import FastStream
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel

from skiff_contracts import subjects
from skiff_contracts.registry import REGISTRY_REPLY, AnswerAccepted, CallRecord, ListSchemas
from skiff_registry.app import create_app
from skiff_registry.gates import Gates
from skiff_registry.settings import RegistrySettings
from skiff_runtime.nats_server import NatsServer


def registry_settings(server: NatsServer, gates: Gates | None = None) -> RegistrySettings:
    """Short buckets and a fast ticker, so points and windows show within a test."""
    return RegistrySettings(
        nats_url=server.url, metrics_window_s=600, metrics_bucket_s=10, snapshot_every_s=0.5,
        rollout=gates or Gates(),
    )  # fmt: skip


class RunningRegistry:
    """The registry app, stopped and started again like its process would be."""

    def __init__(self, server: NatsServer, gates: Gates | None = None) -> None:
        self.server = server
        self.gates = gates
        self.app: FastStream | None = None

    async def start(self) -> None:
        self.app, broker = create_app(registry_settings(self.server, self.gates))
        await self.app.start()
        # Ready means answering: right after a restart in the same process, nats-server can
        # still answer the first request "no responders" although the new subscriptions are
        # flushed (seen under load, once per restart, for ~30 ms), so ask until it answers.
        await ready(broker.connection)

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()
            self.app = None


async def ready(connection: Client, timeout: float = 10.0) -> None:
    """Return once the registry answers a request (a cheap one: the schema list)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ask(connection, ListSchemas(), timeout=1.0)
            return
        except (NoRespondersError, NatsTimeout):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def ask(
    connection: Client, request: BaseModel, timeout: float = 5.0, caller: str = "operator"
) -> Any:
    """One request/reply to the registry as `caller`, the reply parsed as the contract says."""
    operation = str(getattr(request, "kind", ""))
    reply = await connection.request(
        subjects.registry(operation, caller), request.model_dump_json().encode(), timeout=timeout
    )
    return REGISTRY_REPLY.validate_json(reply.data)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def publish_calls(
    connection: Client, records: list[CallRecord] | list[CallRecord | AnswerAccepted]
) -> None:
    """Like a worker (or the planner, for accepted answers): one message per record on
    `calls.<work>`."""
    js = connection.jetstream()
    for record in records:
        await js.publish(
            subjects.calls(record.task.split(".", 1)[0]),
            record.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{record.record_id}:{time.monotonic_ns()}"},
        )
