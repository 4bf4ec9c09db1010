"""The one place a process builds its NATS connections: the FastStream broker, and a plain
nats-py client for adapters that live outside FastStream."""

from __future__ import annotations

import logging

import nats
from faststream.nats import NatsBroker
from faststream.nats.security import NatsCredentials, NatsSecurity, NatsUserPassword
from nats.aio.client import Client

from skiff_runtime.metrics import process_metrics
from skiff_runtime.permissions import inbox_prefix
from skiff_runtime.settings import ServiceSettings
from skiff_runtime.telemetry import telemetry_middlewares


def security_for(settings: ServiceSettings) -> NatsSecurity | None:
    """A `.creds` file (JWT + seed) wins over user/password; neither means no auth."""
    if settings.nats_creds is not None:
        return NatsCredentials.from_file(settings.nats_creds)
    if settings.nats_user and settings.nats_password:
        return NatsUserPassword(settings.nats_user, settings.nats_password.get_secret_value())
    return None


def identity(settings: ServiceSettings, service: str) -> str:
    """The NATS identity this process acts as: its user, or its service name without auth."""
    return settings.nats_user or service


def pull_inbox(settings: ServiceSettings, service: str) -> bytes:
    """The inbox prefix for a JetStream pull subscription: inside the identity's own inbox,
    the only replies its permissions let it read."""
    return f"{inbox_prefix(identity(settings, service))}.".encode()


def servers(nats_url: str) -> list[str]:
    """The servers of a URL list: `nats://a:4222,nats://b:4222` (a cluster's seed nodes), so a
    process starts, and reconnects, while any one of them is down."""
    return [url.strip() for url in nats_url.split(",") if url.strip()]


def make_broker(settings: ServiceSettings, service: str) -> NatsBroker:
    """A broker that reconnects forever: a NATS restart must not end the process."""
    return NatsBroker(
        servers(settings.nats_url),
        name=service,
        inbox_prefix=inbox_prefix(identity(settings, service)),
        security=security_for(settings),
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        # Per-message "received/processed" lines go to debug; errors still surface.
        logger=logging.getLogger(f"skiff.{service}.faststream"),
        # W3C trace context in and out of every message; Prometheus counters per subject.
        middlewares=(*telemetry_middlewares(), process_metrics().faststream_middleware(service)),
        log_level=logging.DEBUG,
        graceful_timeout=30.0,
    )


async def connect(settings: ServiceSettings, service: str, name: str) -> Client:
    """A plain nats-py connection with the service's identity, for adapters outside FastStream
    (the worker's supplier client); it reconnects forever like the broker."""
    options: dict[str, object] = {}
    if settings.nats_creds is not None:
        options["user_credentials"] = str(settings.nats_creds)
    elif settings.nats_user and settings.nats_password:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password.get_secret_value()
    return await nats.connect(
        servers(settings.nats_url),
        name=name,
        inbox_prefix=inbox_prefix(identity(settings, service)),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        **options,
    )
