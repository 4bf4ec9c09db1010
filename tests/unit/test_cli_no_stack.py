"""The client commands with no stack to talk to: they say so within seconds and exit non-zero,
whether nothing listens on the NATS port or something listens and never speaks NATS."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from skiff_cli.main import app
from skiff_runtime.nats_server import free_port

# Before, `skiff trip` kept reconnecting forever: the timeout turns that hang into a failure.
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (no NATS INFO line)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def invoke(args: list[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    # Wide enough that the error panel does not wrap the message.
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split()), time.monotonic() - started


@pytest.mark.parametrize(
    "command",
    [["trip", "Fly me from Boston to Denver on 12 March"], ["status", "trip-1"],
     ["answer", "trip-1", "From Boston"], ["cancel", "trip-1"]],
)  # fmt: skip
def test_a_client_command_with_nothing_listening_says_no_stack_is_reachable(
    command: list[str],
) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    code, output, elapsed = invoke([*command, "--nats-url", url])
    assert code == 4, output
    assert f"no Skiff stack reachable at {url}" in output
    assert "start one with `skiff up`" in output
    assert "Traceback" not in output
    assert elapsed < 10


def test_skiff_trip_with_a_silent_server_gives_up_within_the_connect_timeout(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"nats://127.0.0.1:{silent_port}"
    monkeypatch.setenv("SKIFF_NATS_URL", url)  # the URL a command uses without --nats-url
    code, output, elapsed = invoke(["trip", "Fly me from Boston to Denver on 12 March"])
    assert code == 4, output
    assert f"no Skiff stack let `cli` in at {url}: nothing speaks NATS there" in output
    assert elapsed < 15
