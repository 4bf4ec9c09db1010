"""The local stack's supervisor with real processes: a real nats-server with JetStream (the
stack's own config and users) and two cheap stand-in services (`python -m http.server`),
started as `skiff up` starts the stack (`skiff_cli.supervisor.ensure`), stopped as `skiff down`
stops it. Nothing of the process layer is faked: processes are killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from skiff_cli import stack, supervisor
from skiff_cli.stack import ServiceProcess, Stack
from skiff_runtime.permissions import inbox_prefix

pytestmark = [pytest.mark.nats, pytest.mark.timeout(180)]

STREAM = "SUPERVISED"


def idle(name: str, home: Path) -> ServiceProcess:
    """A long-lived service that needs no NATS identity: an HTTP server on a free port."""
    args = ["0", "--bind", "127.0.0.1", "--directory", str(home)]
    return ServiceProcess(name, "http.server", args=args, nats=False)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "stack"
    home.mkdir()
    yield home
    stack.down(home)  # whatever a failed test left running


def start(home: Path) -> Stack:
    running, started = supervisor.ensure(home, [idle("alpha", home), idle("beta", home)])
    assert started
    return running


def pids(running: Stack) -> list[int | None]:
    return [running.supervisor_pid, running.nats_pid, *(s.pid for s in running.services)]


def gone(pid: int | None) -> bool:
    """Not running: no such process, or one that exited and waits to be reaped (a zombie)."""
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return stack.zombie(pid)


def kill(pid: int | None) -> None:
    """SIGKILL, and wait until it is dead (reaped, when it is ours)."""
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while stack.alive(pid):
        assert time.monotonic() < deadline, f"{pid} outlived SIGKILL"
        time.sleep(0.05)


def eventually(home: Path, check: Callable[[Stack], bool], timeout_s: float = 30.0) -> Stack:
    """stack.json once `check` holds for it (the supervisor rewrites it as things change)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = Stack.load(home)
        if current is not None and check(current):
            return current
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {Stack.load(home)}\n{log_of(home)}")


def log_of(home: Path) -> str:
    """The supervisor's log (both supervisors', after a restart), to explain a failure."""
    return (home / "supervisor.log").read_text()[-3000:]


async def admin_js(running: Stack) -> Client:
    password = stack.stored_password(running.home, stack.ADMIN)
    return await nats.connect(
        running.nats_url, user=stack.ADMIN, password=password,
        inbox_prefix=inbox_prefix(stack.ADMIN), allow_reconnect=False,
    )  # fmt: skip


async def add_stream(running: Stack) -> None:
    """A stream of the test's own: the supervisor provisions the layout only when it starts,
    so finding this one after a NATS restart means the store is the same."""
    connection = await admin_js(running)
    await connection.jetstream().add_stream(name=STREAM, subjects=["supervised.>"])
    await connection.close()


async def stream_kept(running: Stack) -> bool:
    connection = await admin_js(running)
    try:
        await connection.jetstream().stream_info(STREAM)
    except NotFoundError:
        return False
    finally:
        await connection.close()
    return True


def test_the_supervisor_restarts_what_dies_and_a_second_up_starts_nothing(home: Path) -> None:
    first = start(home)
    alpha, beta = first.services
    asyncio.run(add_stream(first))

    kill(alpha.pid)
    now = eventually(home, lambda s: s.services[0].restarts == 1 and s.services[0].pid is not None)
    assert now.services[0].pid != alpha.pid and not gone(now.services[0].pid)
    assert now.services[0].last_exit.startswith("SIGKILL")
    assert (now.services[1].pid, now.services[1].restarts) == (beta.pid, 0)

    kill(first.nats_pid)
    now = eventually(home, lambda s: s.nats_restarts == 1 and s.nats_pid is not None)
    assert now.nats_url == first.nats_url, "NATS came back on another port"
    assert asyncio.run(stream_kept(now)), "JetStream's store did not survive"
    assert now.services[1].pid == beta.pid, "a live service was restarted"

    again, started = supervisor.ensure(home, [idle("gamma", home)])
    assert not started
    assert (again.nats_url, pids(again)) == (now.nats_url, pids(now))
    assert not (home / "gamma.log").exists(), "a second stack was started"

    assert stack.down(home)
    assert all(gone(pid) for pid in pids(again))
    assert not stack.down(home)  # idempotent: nothing left to stop


def test_up_after_the_supervisor_and_nats_died_keeps_the_port_and_orphans_nothing(
    home: Path,
) -> None:
    first = start(home)
    asyncio.run(add_stream(first))
    kill(first.supervisor_pid)
    assert stack.running(home) is None
    kill(first.nats_pid)

    second = start(home)  # what `skiff up` does now

    assert second.nats_url == first.nats_url, log_of(home)
    assert all(gone(pid) for pid in pids(first)), "the first stack's processes outlived it"
    assert not any(gone(pid) for pid in pids(second)), log_of(home)
    assert asyncio.run(stream_kept(second)), f"JetStream's store did not survive\n{log_of(home)}"
    assert stack.down(home)
    assert all(gone(pid) for pid in pids(second))


def test_down_stops_what_a_dead_supervisor_left_running(home: Path) -> None:
    first = start(home)
    kill(first.supervisor_pid)
    assert stack.down(home)
    assert all(gone(pid) for pid in pids(first))
    assert Stack.load(home) is None
