"""Shared fixtures: a real nats-server with JetStream per test session, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from skiff_inference.llamacpp import LlamaCppEngine
from skiff_runtime.jetstream import apply_layout
from skiff_runtime.nats_server import NatsServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path_factory.mktemp("nats"))
    with server.running():
        yield server


@pytest.fixture
async def nats_connection(nats_server: NatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(nats_server.url)
    yield connection
    await connection.close()


@pytest.fixture
async def fresh_layout(nats_connection: Client) -> Client:
    """Delete every stream and bucket, then provision the layout again: each test starts clean."""
    js = nats_connection.jetstream()
    for info in await js.streams_info():
        await js.delete_stream(info.config.name)
    await apply_layout(js)
    return nats_connection


@pytest.fixture(scope="session")
def engine() -> LlamaCppEngine:
    """The real bundled model through the real llama.cpp engine, loaded once per session."""
    return LlamaCppEngine(threads=1)
