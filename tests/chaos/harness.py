"""A whole Skiff stack as separate processes that tests can kill, restart and audit.

`Chaos(home)` runs one nats-server; `Chaos(home, nodes=3)` a three-node JetStream cluster on
loopback with every stream and bucket at R3, each service connected to one node (its seed:
the servers advertise the others, so a client whose node dies reconnects to another).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import nats
import nats.js.errors

from skiff_cli.client import SkiffClient
from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS
from skiff_contracts.inventory import INVENTORY_OPERATIONS
from skiff_contracts.messages import TripRequest
from skiff_contracts.registry import model_id_for, slug_of
from skiff_contracts.saga import SagaRecord
from skiff_flywheel.call_log import StreamSource, read_stream
from skiff_runtime.jetstream import (
    LAYOUT,
    LLM_WORKER,
    ConsumerSpec,
    Layout,
    StreamSpec,
    apply_layout,
    version_consumer,
    wait_until_consuming,
)
from skiff_runtime.nats_server import NatsCluster, NatsServer
from tests.chaos.scripted import MODEL_NAME, MODEL_VERSION, TRIP_TEXT

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DATE = date(2026, 3, 1)


def layout(
    ack_wait_s: float = 2.0, max_deliver: int | None = None, dup_window_s: float | None = None
) -> Layout:
    """The production layout with test-sized timers."""

    def consumer(spec: ConsumerSpec) -> ConsumerSpec:
        changed = dataclasses.replace(spec, ack_wait_s=ack_wait_s)
        return dataclasses.replace(changed, max_deliver=max_deliver) if max_deliver else changed

    def stream(spec: StreamSpec) -> StreamSpec:
        return dataclasses.replace(spec, duplicate_window_s=dup_window_s) if dup_window_s else spec

    return Layout(
        streams=tuple(stream(s) for s in LAYOUT.streams),
        consumers=tuple(consumer(c) for c in LAYOUT.consumers),
        buckets=LAYOUT.buckets,
    )


@dataclass
class Audit:
    """What the inventory says happened, per trip and domain."""

    confirmed: Counter[tuple[str, str]] = field(default_factory=Counter)
    live_holds: list[str] = field(default_factory=list)
    confirm_calls: dict[str, int] = field(default_factory=dict)
    unbalanced: list[str] = field(default_factory=list)
    stale_confirms: list[str] = field(default_factory=list)

    @property
    def duplicate_bookings(self) -> int:
        return sum(n - 1 for n in self.confirmed.values() if n > 1)


@dataclass
class Chaos:
    home: Path
    layout: Layout = field(default_factory=layout)
    planner_env: dict[str, str] = field(default_factory=dict)
    worker_env: dict[str, str] = field(default_factory=dict)
    inventory_env: dict[str, str] = field(default_factory=dict)
    llm_env: dict[str, str] | None = None  # the scripted LLM tier runs when set
    nodes: int = 1  # nats-server processes: 1, or a cluster (streams and buckets at R3)
    nats: NatsServer = field(init=False)  # the only server, or the cluster's first node
    cluster: NatsCluster | None = field(init=False, default=None)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)  # process name -> its node's index

    @property
    def db_path(self) -> Path:
        return self.home / "inventory.sqlite3"

    @property
    def urls(self) -> list[str]:
        """Every server's URL (a connection given the list reconnects to whichever is up)."""
        return self.cluster.urls if self.cluster is not None else [self.nats.url]

    def url_for(self, name: str) -> str:
        """The server process `name` connects to: in a cluster, the services are spread over
        the nodes, and a restarted process keeps its node."""
        if self.cluster is None:
            return self.nats.url
        index = self.seeds.setdefault(name, len(self.seeds) % self.nodes)
        return self.cluster.nodes[index].url

    def _env(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        return {
            **os.environ, "SKIFF_NATS_URL": self.url_for(name), "SKIFF_LOG_FORMAT": "json",
            "SKIFF_METRICS_PORT": "0",
            "PYTHONPATH": path, **extra,
        }  # fmt: skip

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.home / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args], cwd=REPO, env=self._env(name, env), stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def start_planner(self) -> None:
        planner_defaults = {
            "SKIFF_BOOKING_TIMEOUT_S": "3", "SKIFF_EXTRACT_TIMEOUT_S": "30",
            "SKIFF_SWEEP_INTERVAL_S": "0.5", "SKIFF_HOLD_MARGIN_S": "2",
        }  # fmt: skip
        self._spawn("planner", ["-m", "tests.chaos.scripted", "planner"],
                    {**planner_defaults, **self.planner_env})  # fmt: skip

    def start_worker(self, domain: str) -> None:
        env = {"SKIFF_DOMAIN": domain, **self.worker_env}
        self._spawn(f"worker-{domain}", ["-m", "tests.chaos.scripted", "worker"], env)

    def start_llm_worker(self) -> None:
        self._spawn("llm-worker", ["-m", "tests.chaos.scripted", "llm-worker"], self.llm_env or {})

    def start_registry(self) -> None:
        self._spawn("registry", ["-m", "skiff_registry"], {})

    def start_inventory(self) -> None:
        env = {"SKIFF_DB_PATH": str(self.db_path), "SKIFF_SWEEP_INTERVAL_S": "1",
               **self.inventory_env}  # fmt: skip
        self._spawn("inventory", ["-m", "skiff_inventory"], env)

    async def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.nodes > 1:
            self.cluster = NatsCluster(self.home / "nats", size=self.nodes).start()
            self.nats = self.cluster.nodes[0]
        else:
            self.nats = NatsServer(store_dir=self.home / "nats").start()
        await self.provision()
        self.start_registry()
        self.start_inventory()
        for domain in DOMAINS:
            self.start_worker(domain)
        if self.llm_env is not None:
            self.start_llm_worker()
        self.start_planner()
        await self.wait_consuming()

    async def provision(self, timeout_s: float = 30.0) -> None:
        """The layout, at R3 on a cluster; retried while a new cluster elects its leaders."""
        connection = await nats.connect(self.urls)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    await apply_layout(connection.jetstream(), self.layout,
                                       replicas=min(self.nodes, 3))  # fmt: skip
                    return
                except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            await connection.close()

    async def wait_consuming(self, timeout_s: float = 60.0) -> None:
        """Every consumer of the layout, and each scripted model version's (registered)."""
        versions = [
            version_consumer(d, slug_of(model_id_for(f"{d}.extract", MODEL_NAME, MODEL_VERSION)))
            for d in DOMAINS
        ]
        # The LLM tier runs only when asked for: the default scripts never escalate.
        consumers = [
            c
            for c in self.layout.consumers
            if c.durable != LLM_WORKER.durable or self.llm_env is not None
        ]
        consumers += versions
        connection = await nats.connect(self.urls)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    await wait_until_consuming(connection.jetstream(), consumers, timeout_s)
                    return
                # Not registered yet, or JetStream still recovering from a restart.
                except (nats.js.errors.NotFoundError, nats.js.errors.ServiceUnavailableError,
                        nats.errors.TimeoutError, nats.errors.NoRespondersError):  # fmt: skip
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await connection.close()

    def inventory_subscribed(self) -> bool:
        """Whether the inventory's connection serves every subject it answers (it has no
        consumer to watch: it is request/reply), by the servers' monitoring endpoints (in a
        cluster it may have moved to any node)."""
        wanted = len(DOMAINS) * len(INVENTORY_OPERATIONS)
        for server in self.nodes_running():
            url = f"http://127.0.0.1:{server.monitor_port}/connz?subs=1&limit=1024"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    connections = json.loads(response.read())["connections"] or []
            except OSError:
                continue
            if any(
                c.get("name") == "inventory" and len(c.get("subscriptions_list", [])) >= wanted
                for c in connections
            ):
                return True
        return False

    def nodes_running(self) -> list[NatsServer]:
        servers = self.cluster.nodes if self.cluster is not None else [self.nats]
        return [server for server in servers if server.process is not None]

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Every process is back at work: each consumer pulled by its service, the inventory
        subscribed. The next fault then lands on a working stack, not on one still booting."""
        await self.wait_consuming(timeout_s)
        deadline = time.monotonic() + timeout_s
        while not self.inventory_subscribed():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the inventory is not serving after {timeout_s:.0f}s")
            await asyncio.sleep(0.2)

    def start_process(self, name: str) -> None:
        """Start `name` (as `kill` and the `start_*` methods name it) again."""
        if name.startswith("worker-"):
            self.start_worker(name.removeprefix("worker-"))
            return
        starts = {"planner": self.start_planner, "llm-worker": self.start_llm_worker,
                  "registry": self.start_registry, "inventory": self.start_inventory}  # fmt: skip
        starts[name]()

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        if self.cluster is not None:
            self.cluster.stop()
        else:
            self.nats.stop()

    async def submit(
        self, client: SkiffClient, client_request_id: str, timeout_s: float = 45.0
    ) -> str:
        """`timeout_s`: how long each attempt waits for the planner's answer."""
        request = TripRequest(
            text=TRIP_TEXT, reference_date=REFERENCE_DATE, client_request_id=client_request_id
        )
        return (await client.submit(request, timeout_s=timeout_s)).trip_id

    async def records(
        self, client: SkiffClient, trip_ids: list[str]
    ) -> dict[str, SagaRecord | None]:
        return {trip_id: await client.saga(trip_id) for trip_id in trip_ids}

    async def wait_terminal(
        self, client: SkiffClient, trip_ids: list[str], timeout_s: float
    ) -> dict[str, SagaRecord | None]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                records = await self.records(client, trip_ids)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error):
                await asyncio.sleep(0.5)  # JetStream is still recovering after a restart
                continue
            if all(r is not None and r.terminal and not r.outbox for r in records.values()):
                return records
            if time.monotonic() > deadline:
                return records
            await asyncio.sleep(0.5)

    def audit(self) -> Audit:
        audit = Audit()
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            owner = {}
            for key, reply in db.execute(
                "SELECT idempotency_key, reply FROM replies WHERE op='hold'"
            ):
                trip_id, step = key.split(":")[0], key.split(":")[1]
                owner[json.loads(reply)["hold_id"]] = (trip_id, step.split(".")[0])
            for hold_id, status in db.execute("SELECT hold_id, status FROM holds"):
                if status == "confirmed" and hold_id in owner:
                    audit.confirmed[owner[hold_id]] += 1
                if status == "held":
                    audit.live_holds.append(hold_id)
            for hold_id, confirmed_at, expires_at in db.execute(
                "SELECT b.hold_id, b.confirmed_at, h.expires_at FROM bookings b "
                "JOIN holds h ON h.hold_id = b.hold_id"
            ):
                if confirmed_at > expires_at:
                    audit.stale_confirms.append(hold_id)
            audit.confirm_calls = dict(
                db.execute("SELECT idempotency_key, calls FROM confirm_calls")
            )
            audit.unbalanced = [
                row[0] for row in db.execute(
                    "SELECT s.resource FROM stock s LEFT JOIN (SELECT a.resource, "
                    "SUM(CASE WHEN h.status='held' THEN a.quantity ELSE 0 END) AS held, "
                    "SUM(CASE WHEN h.status='confirmed' THEN a.quantity ELSE 0 END) AS booked "
                    "FROM allocations a JOIN holds h ON h.hold_id = a.hold_id GROUP BY a.resource)"
                    " x ON x.resource = s.resource WHERE s.held != COALESCE(x.held, 0) "
                    "OR s.booked != COALESCE(x.booked, 0)"
                )
            ]  # fmt: skip
        finally:
            db.close()
        return audit


async def result_messages(url: str, trip_id: str, step: str) -> int:
    """How many replies for one trip's `step` the RESULTS stream holds."""
    connection = await nats.connect(url)
    js = connection.jetstream()
    subscription = await js.subscribe(subjects.RESULTS_ALL, ordered_consumer=True)
    seen = 0
    try:
        while True:
            try:
                message = await subscription.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return seen
            reply = json.loads(message.data)
            seen += reply.get("trip_id") == trip_id and reply.get("step") == step
    finally:
        await connection.close()


async def accepted_answers(url: str) -> Counter[tuple[str, str]]:
    """How many accepted-answer messages the CALLS stream holds per trip and task."""
    records = await read_stream(StreamSource(url))
    return Counter((r["trip_id"], r["task"]) for r in records if r.get("kind") == "answer_accepted")


async def started(chaos: Chaos) -> AsyncIterator[Chaos]:
    """The stack for the duration of a test (`async for chaos in started(...)`)."""
    await chaos.start()
    try:
        yield chaos
    finally:
        chaos.stop()
