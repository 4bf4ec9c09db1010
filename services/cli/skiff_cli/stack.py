"""The local stack: a nats-server with JetStream and every service as a local process.

The LLM tier is the `llm-worker` pointed at `SKIFF_LLM__URL` when that is set, else at a
stand-in LLM server started with the stack: the bundled SmolLM2 behind llama-cpp-python's
OpenAI-compatible server (`skiff_extraction.llm_tier`; not a large model, see there).

State lives in one directory (default `.skiff/`): the NATS store, each process's log, and
a `stack.json` naming the NATS URL and every PID, with each process's restart count, so
`skiff down` can stop what `skiff up` started. A supervisor (`skiff_cli.supervisor`) owns the
processes and restarts whichever dies. NATS runs with the least-privilege users of
`skiff_runtime.permissions`: each service
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
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import nats
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from skiff_contracts.domains import DOMAINS
from skiff_contracts.registry import model_id_for, slug_of
from skiff_extraction.calibration import BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION
from skiff_extraction.llm_tier import STANDIN_MODULE, standin_args, standin_command
from skiff_inference.model_files import bundled_model_path
from skiff_runtime.broker import connect as runtime_connect
from skiff_runtime.broker import servers
from skiff_runtime.jetstream import LAYOUT, apply_layout, version_consumer
from skiff_runtime.jetstream import wait_until_consuming as runtime_wait
from skiff_runtime.nats_server import free_port
from skiff_runtime.permissions import (
    BY_NAME,
    generate_passwords,
    inbox_prefix,
    render_config,
    write_private,
)
from skiff_runtime.settings import ServiceSettings

if TYPE_CHECKING:
    from skiff_cli.champions import Installed


def default_home() -> Path:
    """Where the local stack keeps its state, logs and passwords: `$SKIFF_HOME`, else `.skiff`."""
    return Path(os.environ.get("SKIFF_HOME", ".skiff"))


DEFAULT_HOME = default_home()
ADMIN = "admin"
FLYWHEEL = "flywheel"  # registers and promotes the shipped champions
CLI = "cli"  # the client identity of the `skiff` CLI's trips
OPERATOR = "operator"  # the `skiff` CLI's registry changes, and extraction and routes over NATS


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
    args: list[str] = field(default_factory=list)
    nats: bool = True  # connects to NATS as the identity `name` (the LLM server does not)
    metrics_port: int = field(default_factory=free_port)  # /healthz, /readyz, /metrics
    restarts: int = 0  # by the supervisor since it started
    last_exit: str = ""  # how it last ended ("SIGKILL at 12:03:04"); "" if it never did


@dataclass
class Stack:
    home: Path
    nats_url: str = ""
    nats_pid: int | None = None
    services: list[ServiceProcess] = field(default_factory=list)
    supervisor_pid: int | None = None  # recorded by the supervisor as it starts
    nats_restarts: int = 0
    nats_last_exit: str = ""

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def save(self) -> None:
        """Write stack.json whole or not at all (a temporary file renamed over it): commands
        read it while the supervisor rewrites it."""
        self.home.mkdir(parents=True, exist_ok=True)
        state = {
            "nats_url": self.nats_url,
            "nats_pid": self.nats_pid,
            "services": [asdict(s) for s in self.services],
            "supervisor_pid": self.supervisor_pid,
            "nats_restarts": self.nats_restarts,
            "nats_last_exit": self.nats_last_exit,
        }
        fd, temporary = tempfile.mkstemp(dir=self.home, prefix=".stack-", suffix=".json")
        with os.fdopen(fd, "w") as file:
            json.dump(state, file, indent=2)
        os.replace(temporary, self.state_file)

    @classmethod
    def load(cls, home: Path) -> Stack | None:
        path = home / "stack.json"
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        services = [ServiceProcess(**s) for s in state["services"]]
        return cls(
            home, state["nats_url"], state["nats_pid"], services, state.get("supervisor_pid"),
            state.get("nats_restarts", 0), state.get("nats_last_exit", ""),
        )  # fmt: skip


def llm_services(threads: int, llm_url: str | None = None) -> list[ServiceProcess]:
    """The LLM worker, and the stand-in LLM server it talks to unless `llm_url` names one."""
    if llm_url:
        return [ServiceProcess("llm-worker", "skiff_llm_worker", {"SKIFF_LLM__URL": llm_url})]
    port = free_port()
    server = ServiceProcess(
        "llm-standin",
        STANDIN_MODULE,
        args=standin_args(bundled_model_path(), port, threads=threads),
        nats=False,
    )
    worker = ServiceProcess(
        "llm-worker", "skiff_llm_worker", {"SKIFF_LLM__URL": f"http://127.0.0.1:{port}"}
    )
    return [server, worker]


def default_services(threads: int, home: Path = DEFAULT_HOME) -> list[ServiceProcess]:
    """The registry, the planner, one worker per domain (engines on `threads` threads), the
    LLM tier (see `llm_services`; `SKIFF_LLM__URL` in the environment replaces the stand-in)
    and the inventory.

    Each service's name is also its NATS identity.
    """
    services = [
        ServiceProcess("registry", "skiff_registry"),
        ServiceProcess("planner", "skiff_planner"),
    ]
    for domain in DOMAINS:
        # A short heartbeat: a worker starts serving its champion at the beat after its
        # promotion, and the stack is ready only then.
        env = {"SKIFF_DOMAIN": domain, "SKIFF_ENGINE__THREADS": str(threads),
               "SKIFF_HEARTBEAT_S": "3"}  # fmt: skip
        services.append(ServiceProcess(f"worker-{domain}", "skiff_worker", env))
    services += llm_services(threads, os.environ.get("SKIFF_LLM__URL"))
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


def stored_password(home: Path, name: str) -> str | None:
    """One identity's password from the stack in `home`, if that stack made one (read only:
    nothing is generated, so a command run outside any stack stays without credentials)."""
    path = home / "nats-passwords.json"
    if not path.exists():
        return None
    password = json.loads(path.read_text()).get(name)
    return str(password) if password else None


def secure_nats_config(home: Path, passwords: dict[str, str]) -> Path:
    """Render the least-privilege nats.conf for the local stack (0600; store dir from NatsServer).
    Every identity reads replies only in its own inbox (`_INBOX.<identity>.>`)."""
    config = home / "nats.conf"
    rendered = render_config(passwords, store_dir=None, private_inboxes=True)
    write_private(config, rendered)
    return config


def acting_as(identity: str) -> str:
    """The identity a command acts as: `$SKIFF_NATS_USER` when set, else `identity`."""
    return ServiceSettings().nats_user or identity


async def connect(
    nats_url: str, auth: NatsAuth | None = None, identity: str = CLI, home: Path | None = None
) -> Client:
    """Connect as `auth`, else with the `SKIFF_NATS_CREDS`/`_USER`/`_PASSWORD` environment,
    else as `identity` with the password the local stack in `home` (`default_home()`) keeps
    for it. A Skiff stack refuses a connection without credentials."""
    settings = ServiceSettings(nats_url=nats_url)
    from_env = settings.nats_user is not None or settings.nats_creds is not None
    stored = stored_password(home or default_home(), identity)
    if auth is None and not from_env and stored is not None:
        auth = NatsAuth(identity, stored)
    if auth is not None:
        return await nats.connect(
            servers(nats_url), user=auth.user, password=auth.password,
            inbox_prefix=inbox_prefix(auth.user),
        )  # fmt: skip
    return await runtime_connect(settings, identity, "skiff")


async def provision(nats_url: str, auth: NatsAuth | None = None, *, replicas: int = 1) -> list[str]:
    """`skiff streams apply`: create or update every stream, consumer and bucket (as admin),
    each with `replicas` copies (3 on a three-node cluster)."""
    connection = await connect(nats_url, auth, identity=ADMIN)
    try:
        return await apply_layout(connection.jetstream(), replicas=replicas)
    finally:
        await connection.close()


async def wait_until_consuming(
    nats_url: str, timeout_s: float, auth: NatsAuth | None = None
) -> None:
    """Ready means: every service has a pull request waiting on each of its consumers — the
    planner's, the registry's, each domain worker's shared one and its model version's (which
    exists once the worker registered), and the LLM worker's (once its LLM server answered)."""
    models = [
        version_consumer(
            d, slug_of(model_id_for(f"{d}.extract", BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION))
        )
        for d in DOMAINS
    ]
    connection = await connect(nats_url, auth)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = max(1.0, deadline - time.monotonic())
            try:
                await runtime_wait(connection.jetstream(), [*LAYOUT.consumers, *models], remaining)
                return
            except NotFoundError:  # a worker has not registered its model version yet
                if time.monotonic() > deadline:
                    raise TimeoutError("a worker never registered its model version") from None
                await asyncio.sleep(0.25)
    finally:
        await connection.close()


def start_service(stack: Stack, service: ServiceProcess) -> subprocess.Popen[bytes]:
    """Start one service as its own NATS identity (the password is never saved in stack.json),
    in its own session: a signal to its process group reaches it and its children only."""
    env = {
        **os.environ, "SKIFF_NATS_URL": stack.nats_url, "SKIFF_LOG_FORMAT": "json",
        "SKIFF_METRICS_PORT": str(service.metrics_port),
    }  # fmt: skip
    if service.nats:
        env["SKIFF_NATS_USER"] = service.name
        env["SKIFF_NATS_PASSWORD"] = local_passwords(stack.home)[service.name]
    env |= service.env
    with (stack.home / f"{service.name}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", service.module, *service.args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service.pid = process.pid
    return process


def up(
    home: Path = DEFAULT_HOME,
    *,
    threads: int = 1,
    ready_timeout_s: float = 180.0,
    shipped: bool = True,
) -> Stack:
    """The stack in `home`, ready: its supervisor (`skiff_cli.supervisor`) starts NATS (file
    store under `home`), provisions JetStream and starts every service; ready once each
    consumes and (unless not `shipped`) the shipped adapters are the champions.

    Idempotent: a stack whose supervisor runs is kept (the supervisor restarts whatever of it
    died) and returned once ready. What a dead supervisor left running is stopped first, and
    the new stack keeps the NATS port and store."""
    from skiff_cli.supervisor import ensure  # it imports this module

    stack, started = ensure(home, default_services(threads, home))
    passwords = local_passwords(home)
    admin = NatsAuth(ADMIN, passwords[ADMIN])
    try:
        asyncio.run(wait_until_consuming(stack.nats_url, ready_timeout_s, admin))
        if started and shipped:
            flywheel = NatsAuth(FLYWHEEL, passwords[FLYWHEEL])
            asyncio.run(install_champions(stack.nats_url, flywheel, admin, ready_timeout_s))
    except BaseException:
        if started:  # a stack that never got ready is not left half-running
            down(home)
        raise
    return Stack.load(home) or stack


def running(home: Path = DEFAULT_HOME) -> Stack | None:
    """The stack recorded in `home` if its supervisor runs."""
    stack = Stack.load(home)
    return stack if stack is not None and alive(stack.supervisor_pid) else None


async def install_champions(
    nats_url: str, flywheel: NatsAuth, admin: NatsAuth, timeout_s: float
) -> list[Installed]:
    """The shipped adapters as champions (as the flywheel identity), then ready once every
    domain's worker serves its champion (it loads it at its next heartbeat)."""
    from skiff_cli.champions import install  # it imports the registry client, which imports us
    from skiff_cli.registry_cli import RegistryApi

    connection = await connect(nats_url, flywheel)
    try:
        installed = await install(RegistryApi(connection, flywheel.user))
    finally:
        await connection.close()
    consumers = [
        version_consumer(i.domain, slug_of(i.model_id)) for i in installed if i.domain != "router"
    ]
    watcher = await connect(nats_url, admin)
    try:
        await runtime_wait(watcher.jetstream(), consumers, timeout_s)
    finally:
        await watcher.close()
    return installed


def resolve_nats_url(option: str | None, home: Path = DEFAULT_HOME) -> str:
    """The NATS URL a command uses: the option, else `$SKIFF_NATS_URL`, else the running local
    stack's, else localhost."""
    if option:
        return option
    if env := os.environ.get("SKIFF_NATS_URL"):
        return env
    running = Stack.load(home)
    return running.nats_url if running else "nats://127.0.0.1:4222"


def alive(pid: int | None) -> bool:
    """Whether `pid` runs. A process this one started and that exited is reaped here: until
    then it is a zombie, which `kill(pid, 0)` would still report as alive. So is an orphan
    whose new parent never reaps it, hence the look at its state."""
    if pid is None:
        return False
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return not zombie(pid)


def zombie(pid: int) -> bool:
    """Whether `pid` exited and waits to be reaped (Linux's /proc; False where there is none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]  # the state follows "(command)"


def signal_group(pid: int, signum: signal.Signals) -> None:
    """`signum` to the process group `pid` leads (every stack process starts its own session),
    else to `pid` alone: never to the group of whoever started it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def stop_pids(pids: Iterable[int | None], timeout_s: float = 20.0) -> None:
    """Stop these processes together: SIGTERM to each one's group, SIGKILL to what still runs
    after `timeout_s`; returns once all are gone (or a few seconds after the SIGKILL)."""
    left = [pid for pid in pids if pid is not None and alive(pid)]
    for pid in left:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while (left := [pid for pid in left if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while (left := [pid for pid in left if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_pid(pid: int | None, timeout_s: float = 20.0) -> None:
    stop_pids([pid], timeout_s)


def down(home: Path = DEFAULT_HOME) -> bool:
    """Stop every process of the stack, whatever its state: the supervisor first (it stops what
    it runs, and nothing is restarted after), then what it left running (services, then NATS:
    also the processes of a supervisor that had died). False when no stack was recorded."""
    stack = Stack.load(home)
    if stack is None:
        return False
    stop_pids([stack.supervisor_pid], timeout_s=60.0)
    stack = Stack.load(home) or stack  # the pids as the supervisor last recorded them
    stop_pids([service.pid for service in stack.services])
    stop_pids([stack.nats_pid])
    stack.state_file.unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def http_server(command: list[str], url: str, ready_timeout_s: float) -> Iterator[str]:
    """Run an OpenAI-compatible server (`command`) until the block ends; yields `url` once
    `/v1/models` answers. Its output goes to a temporary file, shown if it dies starting."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode("utf-8", "replace")[-2000:]
                    raise RuntimeError(f"{command[2]} exited with {process.returncode}:\n{output}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/v1/models", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server at {url} is not ready after {ready_timeout_s}s")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def standin_llm(threads: int = 1, ready_timeout_s: float = 120.0) -> Iterator[str]:
    """Run the stand-in LLM server for the duration of the block; yields its base URL."""
    port = free_port()
    command = standin_command(bundled_model_path(), port, threads=threads)
    with http_server(command, f"http://127.0.0.1:{port}", ready_timeout_s) as url:
        yield url
