"""The local stack: a nats-server with JetStream and every service as a local process.

State lives in one directory (default `.skiff/`): the NATS store, each process's log, and
a `stack.json` naming the PIDs and the NATS URL so `skiff down` can stop what `skiff up`
started. NATS runs with the least-privilege users of `skiff_runtime.permissions`: each service
connects as its own identity, provisioning runs as `admin`, and connections without
credentials (the `skiff` CLI) act as `cli`. The passwords are generated once and kept, with
the rendered `nats.conf`, readable only by their owner (0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client

from skiff_contracts.domains import DOMAINS
from skiff_runtime.broker import connect as runtime_connect
from skiff_runtime.jetstream import PLANNER_RESULTS, WORKER_CONSUMERS, apply_layout
from skiff_runtime.nats_server import NatsServer
from skiff_runtime.permissions import (
    BY_NAME,
    generate_passwords,
    inbox_prefix,
    render_config,
    write_private,
)
from skiff_runtime.settings import ServiceSettings

DEFAULT_HOME = Path(".skiff")
ADMIN = "admin"
CLI = "cli"  # what a connection without credentials (the `skiff` CLI) may do


@dataclass(frozen=True)
class NatsAuth:
    """A NATS user and password: one identity of `skiff_runtime.permissions`."""

    user: str
    password: str


@dataclass
class ServiceProcess:
    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    pid: int | None = None


@dataclass
class Stack:
    home: Path
    nats_url: str = ""
    nats_pid: int | None = None
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        state = {
            "nats_url": self.nats_url,
            "nats_pid": self.nats_pid,
            "services": [asdict(s) for s in self.services],
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, home: Path) -> Stack | None:
        path = home / "stack.json"
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        services = [ServiceProcess(**s) for s in state["services"]]
        return cls(home, state["nats_url"], state["nats_pid"], services)


def default_services(threads: int, home: Path = DEFAULT_HOME) -> list[ServiceProcess]:
    """The planner, one worker per domain (engines on `threads` threads) and the inventory.

    Each service's name is also its NATS identity.
    """
    services = [ServiceProcess("planner", "skiff_planner", {"SKIFF_ROUTER_THREADS": str(threads)})]
    for domain in DOMAINS:
        services.append(
            ServiceProcess(
                f"worker-{domain}",
                "skiff_worker",
                {"SKIFF_DOMAIN": domain, "SKIFF_ENGINE__THREADS": str(threads)},
            )
        )
    database = (home / "inventory.sqlite3").resolve()
    services.append(
        ServiceProcess("inventory", "skiff_inventory", {"SKIFF_DB_PATH": str(database)})
    )
    return services


def local_passwords(home: Path) -> dict[str, str]:
    """Every identity's password for the stack in `home`: generated once, then kept (0600)."""
    path = home / "nats-passwords.json"
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in BY_NAME if name not in passwords]
    if missing or not path.exists():
        passwords |= generate_passwords(missing)
        write_private(path, json.dumps(passwords, indent=2))
    return passwords


def secure_nats_config(home: Path, passwords: dict[str, str]) -> Path:
    """Render the least-privilege nats.conf for the local stack (0600; store dir from NatsServer).

    Services and the CLI do not set a per-identity `inbox_prefix` yet, so inboxes are shared.
    """
    config = home / "nats.conf"
    rendered = render_config(passwords, store_dir=None, no_auth_user=CLI, private_inboxes=True)
    write_private(config, rendered)
    return config


async def connect(nats_url: str, auth: NatsAuth | None = None) -> Client:
    """Connect as `auth`, else as the `SKIFF_NATS_CREDS`/`_USER`/`_PASSWORD` env, else as `cli`
    (the identity a connection without credentials gets on the local stack)."""
    if auth is not None:
        return await nats.connect(
            nats_url, user=auth.user, password=auth.password, inbox_prefix=inbox_prefix(auth.user)
        )
    return await runtime_connect(ServiceSettings(nats_url=nats_url), CLI, "skiff")


async def provision(nats_url: str, auth: NatsAuth | None = None) -> list[str]:
    """`skiff streams apply`: create or update every stream, consumer and bucket (as admin)."""
    connection = await connect(nats_url, auth)
    try:
        return await apply_layout(connection.jetstream())
    finally:
        await connection.close()


async def wait_until_consuming(
    nats_url: str, timeout_s: float, auth: NatsAuth | None = None
) -> None:
    """Ready means: the planner and every worker have a pull request waiting on their consumer."""
    connection = await connect(nats_url, auth)
    js = connection.jetstream()
    consumers = [PLANNER_RESULTS, *WORKER_CONSUMERS.values()]
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            waiting = [
                (await js.consumer_info(c.stream, c.durable)).num_waiting or 0 for c in consumers
            ]
            if all(waiting):
                return
            if time.monotonic() > deadline:
                idle = [c.durable for c, n in zip(consumers, waiting, strict=True) if not n]
                raise TimeoutError(f"not consuming after {timeout_s:.0f}s: {', '.join(idle)}")
            await asyncio.sleep(0.25)
    finally:
        await connection.close()


def start_service(stack: Stack, service: ServiceProcess) -> None:
    """Start one service as its own NATS identity (the password is never saved in stack.json)."""
    env = {
        **os.environ,
        "SKIFF_NATS_URL": stack.nats_url,
        "SKIFF_LOG_FORMAT": "json",
        "SKIFF_NATS_USER": service.name,
        "SKIFF_NATS_PASSWORD": local_passwords(stack.home)[service.name],
        **service.env,
    }
    log = (stack.home / f"{service.name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", service.module],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    service.pid = process.pid


def up(home: Path = DEFAULT_HOME, *, threads: int = 1, ready_timeout_s: float = 180.0) -> Stack:
    """Start NATS (file store under `home`), provision JetStream, start every service."""
    if (existing := Stack.load(home)) is not None and alive(existing.nats_pid):
        raise RuntimeError(f"a stack is already running from {home} ({existing.nats_url})")
    passwords = local_passwords(home)
    config = secure_nats_config(home, passwords)
    server = NatsServer(store_dir=home / "nats", config_file=config).start()
    assert server.process is not None
    stack = Stack(home, server.url, server.process.pid, default_services(threads, home))
    stack.save()
    admin = NatsAuth(ADMIN, passwords[ADMIN])
    asyncio.run(provision(stack.nats_url, admin))
    for service in stack.services:
        start_service(stack, service)
    stack.save()
    try:
        asyncio.run(wait_until_consuming(stack.nats_url, ready_timeout_s, admin))
    except BaseException:
        down(home)
        raise
    return stack


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_pid(pid: int | None, timeout_s: float = 20.0) -> None:
    if not alive(pid):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
        with contextlib.suppress(ChildProcessError):  # reap our children: no zombies
            os.waitpid(pid, os.WNOHANG)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def down(home: Path = DEFAULT_HOME) -> bool:
    """Stop every service, then NATS. False when no stack was recorded."""
    stack = Stack.load(home)
    if stack is None:
        return False
    for service in stack.services:
        stop_pid(service.pid)
    stop_pid(stack.nats_pid)
    stack.state_file.unlink(missing_ok=True)
    return True
