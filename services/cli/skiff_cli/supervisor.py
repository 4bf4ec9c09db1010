"""The local stack's supervisor: one detached process that starts the nats-server and every
service named in `stack.json`, restarts whichever dies and records it there.

`skiff up` starts it (`python -m skiff_cli.supervisor --home .skiff`) in its own session, so it
outlives the command; `skiff down` stops it first, so that nothing is restarted while the rest
stops. Being the parent of every process, it reaps them and reads how each ended. A dead
process comes back after a backoff (1 s, doubling to 30 s; back to 1 s once it stayed up a
minute), and the nats-server on the same port and store: JetStream's data survives, and the
services, which reconnect forever, carry on. stack.json gets each pid, restart count and last
exit (`skiff stack` shows them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from skiff_cli.stack import (
    ADMIN,
    NatsAuth,
    ServiceProcess,
    Stack,
    alive,
    down,
    local_passwords,
    provision,
    secure_nats_config,
    start_service,
    stop_pids,
)
from skiff_runtime.nats_server import NatsServer, free_port

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0  # up this long, a process that dies starts its backoff over
POLL_S = 0.2
STARTED_TIMEOUT_S = 60.0  # for the supervisor to start NATS, provision and start every service

log = logging.getLogger("skiff.supervisor")


def backoff_s(failures: int) -> float:
    """The wait before restarting a process that died `failures` (≥ 1) times in a row."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2.0 ** (failures - 1))


def ended(returncode: int) -> str:
    """How a process ended, for `skiff stack`: "exit 1 at 12:03:04", "SIGKILL at 12:03:04"."""
    how = f"exit {returncode}" if returncode >= 0 else signal.Signals(-returncode).name
    return f"{how} at {datetime.now():%H:%M:%S}"


@dataclass
class Child:
    """One supervised process: how to start it, and its restart history."""

    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_exit: str = ""
    failures: int = 0  # deaths in a row, each less than STABLE_S after its start
    started_at: float = 0.0
    due: float = 0.0  # when a dead one starts again (monotonic clock)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, now: float) -> None:
        self.process = self.spawn()
        self.started_at = now

    def tick(self, now: float) -> bool:
        """Note a death, or restart a dead process whose backoff is over; True if it did."""
        if self.process is not None:
            returncode = self.process.poll()
            if returncode is None:
                return False
            self.process = None
            self.died(now, ended(returncode))
            return True
        if now < self.due:
            return False
        self.restarts += 1
        try:
            self.start(now)
        except Exception as error:  # e.g. a nats-server whose port someone else took
            self.died(now, f"start failed ({error}) at {datetime.now():%H:%M:%S}")
            return True
        log.info("%s restarted (restart %d, pid %s)", self.name, self.restarts, self.pid)
        return True

    def died(self, now: float, how: str) -> None:
        self.failures = 1 if now - self.started_at >= STABLE_S else self.failures + 1
        self.due = now + backoff_s(self.failures)
        self.last_exit = how
        log.warning("%s ended: %s; restart in %g s", self.name, how, self.due - now)


class Supervisor:
    """Starts the stack recorded in `stack.json`, keeps it running, stops it on SIGTERM."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        config = secure_nats_config(stack.home, local_passwords(stack.home))
        self.server = NatsServer(
            store_dir=stack.home / "nats", port=port_of(stack.nats_url) or free_port(),
            config_file=config, new_session=True,
        )  # fmt: skip
        stack.nats_url = self.server.url
        self.nats = Child("nats-server", self.start_nats)
        self.services = [Child(s.name, self.starter(s)) for s in stack.services]
        self.stopping = False

    def start_nats(self) -> subprocess.Popen[bytes]:
        self.server.start()  # raises when it does not listen within seconds
        assert self.server.process is not None
        return self.server.process

    def starter(self, service: ServiceProcess) -> Callable[[], subprocess.Popen[bytes]]:
        return lambda: start_service(self.stack, service)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.stack.supervisor_pid = os.getpid()  # from now on `skiff down` stops us
        self.stack.save()
        try:
            self.start_all()
        except Exception:
            log.exception("the stack did not start")
            self.shutdown()
            return 1
        while not self.stopping:
            now = time.monotonic()
            changed = [child.tick(now) for child in [self.nats, *self.services]]
            if any(changed):
                self.record()
            time.sleep(POLL_S)
        self.shutdown()
        return 0

    def start_all(self) -> None:
        """NATS, JetStream's layout (as admin: idempotent, the store may hold it), services;
        then recorded: NATS's pid in stack.json tells `skiff up` the stack started."""
        self.nats.start(time.monotonic())
        admin = NatsAuth(ADMIN, local_passwords(self.stack.home)[ADMIN])
        asyncio.run(asyncio.wait_for(provision(self.stack.nats_url, admin), 30.0))
        for child in self.services:
            child.start(time.monotonic())
        self.record()
        log.info("stack started: %s, %d services", self.stack.nats_url, len(self.services))

    def record(self) -> None:
        stack = self.stack
        stack.nats_pid, stack.nats_restarts = self.nats.pid, self.nats.restarts
        stack.nats_last_exit = self.nats.last_exit
        for child, service in zip(self.services, stack.services, strict=True):
            service.pid, service.restarts = child.pid, child.restarts
            service.last_exit = child.last_exit
        stack.save()

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        """The services first, while NATS still carries their last messages, then NATS."""
        stop_pids([child.pid for child in self.services])
        stop_pids([self.nats.pid])
        log.info("stack stopped")


def port_of(nats_url: str) -> int | None:
    return urlsplit(nats_url).port if nats_url else None


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nats-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ensure(home: Path, services: list[ServiceProcess]) -> tuple[Stack, bool]:
    """The stack in `home` whose supervisor runs, else a new one running `services`; True
    when it was started here. Whatever an earlier stack in `home` left running is stopped
    first; its NATS port is kept when free, so the URL stays the same."""
    previous = Stack.load(home)
    if previous is not None and alive(previous.supervisor_pid):
        return previous, False
    down(home)
    port = port_of(previous.nats_url) if previous is not None else None
    url = f"nats://127.0.0.1:{port}" if port and port_free(port) else ""
    return launch(Stack(home.resolve(), url, services=services)), True


def launch(stack: Stack) -> Stack:
    """Start a supervisor for `stack` and return the stack once it started every process."""
    stack.save()
    with (stack.home / "supervisor.log").open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "skiff_cli.supervisor", "--home", str(stack.home)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + STARTED_TIMEOUT_S
    while True:
        started = Stack.load(stack.home)
        if started is not None and started.supervisor_pid == process.pid and started.nats_pid:
            return started
        if process.poll() is not None:
            tail = (stack.home / "supervisor.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the supervisor exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            stop_pids([process.pid], timeout_s=60.0)  # it stops what it started
            down(stack.home)
            raise TimeoutError(f"the stack did not start in {STARTED_TIMEOUT_S:g} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skiff_cli.supervisor", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the stack's directory")
    home = parser.parse_args(argv).home
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stack = Stack.load(home)
    if stack is None:
        log.error("no stack.json in %s", home)
        return 2
    return Supervisor(stack).run()


if __name__ == "__main__":
    sys.exit(main())
