"""The conversion loop end to end on the real stack: trips are logged, `skiff flywheel run`
curates them from the CALLS stream, fine-tunes a LoRA adapter, evaluates it against the
champion and registers it; the registry takes it through shadow, canary and champion on its
gates while live trips flow; the flights worker loads the adapter without a restart and
serves live traffic with it; a rollback puts the base model back.

The gates are opened wide here (any offline result, two calls per stage, the canary takes
every trip): this test is about the machinery, not about the adapter's quality — a few
training steps on a few trips prove nothing about accuracy. The real figures come from
`skiff flywheel run --sgd` on the development data (README, "Conversion loop").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from skiff_cli import stack
from skiff_cli.client import SkiffClient
from skiff_cli.flywheel_report import load
from skiff_cli.registry_cli import RegistryApi
from skiff_contracts.events import TripFinished
from skiff_contracts.messages import TripRequest
from skiff_contracts.registry import CallRecord, GetHistory, GetModel, History, ModelView, Rollback
from skiff_flywheel.call_log import FLYWHEEL_IDENTITY, StreamSource, read_stream
from skiff_flywheel.curate import normalize_text, split_of

pytestmark = [pytest.mark.nats, pytest.mark.model]

TASK = "flights.extract"
EVAL_SHARE = 0.5
ROUTES = [
    ("Boston", "Denver"), ("Chicago", "Seattle"), ("New York", "Miami"), ("Dallas", "Phoenix"),
    ("San Francisco", "Boston"), ("Seattle", "Chicago"), ("Miami", "New York"),
    ("Phoenix", "Dallas"), ("Denver", "Boston"), ("Houston", "Chicago"),
]  # fmt: skip
FAST_LOOP = {
    "SKIFF_HEARTBEAT_S": "1",  # workers look for new adapter versions every second
    "SKIFF_ROLLOUT__EVERY_S": "1",
    "SKIFF_ROLLOUT__OFFLINE_MIN_GAIN": "-1",
    "SKIFF_ROLLOUT__SHADOW_MIN_CALLS": "2",
    "SKIFF_ROLLOUT__CANARY_MIN_CALLS": "2",
    "SKIFF_ROLLOUT__CANARY_SHARE": "1.0",
    "SKIFF_ROLLOUT__MAX_VALID_DROP": "1",
    "SKIFF_ROLLOUT__MAX_ESCALATION_RISE": "1",
    "SKIFF_ROLLOUT__MAX_P95_RATIO": "1000",
}


def text(n: int) -> str:
    origin, destination = ROUTES[n % len(ROUTES)]
    day = 3 + n % 20
    return f"I need a one-way flight from {origin} to {destination} on {day} March, 1 passenger."


@pytest.fixture(scope="module")
def loop_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    saved = {key: os.environ.get(key) for key in FAST_LOOP}
    os.environ.update(FAST_LOOP)  # the stack's processes inherit the environment
    home = tmp_path_factory.mktemp("loop")
    try:
        running = stack.up(home, threads=1)
        yield running
        stack.down(home)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def trip(url: str, n: int, *, wait: bool) -> str:
    request = TripRequest(text=text(n), reference_date=date(2026, 3, 1),
                          client_request_id=f"loop-{n}")  # fmt: skip
    async with await SkiffClient.connect(url) as client:
        accepted = await client.submit(request)
        if wait:
            events = [e async for e in client.events(accepted.trip_id, timeout_s=300)]
            # Booked or not (a route may be sold out), extraction was accepted, and logged.
            assert isinstance(events[-1], TripFinished), events[-1]
            assert events[-1].state in ("completed", "compensated"), events[-1]
    return accepted.trip_id


async def calls_of(running: stack.Stack, trip_id: str) -> list[CallRecord]:
    password = stack.stored_password(running.home, FLYWHEEL_IDENTITY)
    source = StreamSource(running.nats_url, user=FLYWHEEL_IDENTITY, password=password)
    records = await read_stream(source, task=TASK)
    return [
        CallRecord.model_validate(r)
        for r in records
        if r.get("kind", "call_record") == "call_record" and r.get("trip_id") == trip_id
    ]


async def flywheel_run(
    running: stack.Stack, workdir: Path, log: Path
) -> asyncio.subprocess.Process:
    skiff = Path(sys.executable).parent / "skiff"
    with log.open("wb") as output:  # a file, not a pipe: nobody reads while it runs
        return await asyncio.create_subprocess_exec(
            str(skiff), "flywheel", "run", "--task", TASK, "--workdir", str(workdir),
            "--eval-share", str(EVAL_SHARE), "--max-steps", "3", "--threads", "1",
            "--eval-limit", "2", "--wait-s", "300", "--nats-url", running.nats_url,
            "--home", str(running.home), stdout=output, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


async def test_logged_trips_become_an_adapter_that_is_promoted_and_serves_live_traffic(
    loop_stack: stack.Stack, tmp_path: Path
) -> None:
    url = loop_stack.nats_url
    logged = range(1, 9)
    splits = [split_of(normalize_text(text(n)), EVAL_SHARE) for n in logged]
    assert "eval" in splits and splits.count("train") >= 3, splits  # a usable dataset
    for n in logged:  # S1: booked trips leave calls and accepted answers on CALLS
        await trip(url, n, wait=True)

    workdir = tmp_path / "flywheel"
    run = await flywheel_run(loop_stack, workdir, tmp_path / "run.log")
    feeding = 100
    while run.returncode is None:  # live traffic for the shadow, then the canary, to answer
        await trip(url, feeding, wait=False)
        feeding += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.wait(), timeout=6)
    output = (tmp_path / "run.log").read_text()
    assert run.returncode == 0, output

    [iteration] = load(workdir)
    candidate = iteration.candidate_model
    assert iteration.outcome == "champion (rollout auto)", output
    assert (workdir / "report.md").read_text().count(candidate) >= 1
    assert (workdir / "report.svg").read_text().startswith("<svg")
    async with await RegistryApi.connect(url) as api:
        view = await api.ask(GetModel(model_id=candidate))
        history = await api.ask(GetHistory(task=TASK))
    assert isinstance(view, ModelView) and view.card.adapter and view.card.prompt_version == "ft1"
    assert isinstance(history, History)
    automatic = [m.status for m in history.moves if m.who == "rollout" and m.model_id == candidate]
    assert automatic == ["shadow", "canary", "champion"], history.moves

    served = await trip(url, 500, wait=False)  # the champion now: the adapter serves it
    deadline = time.monotonic() + 120
    while not (records := await calls_of(loop_stack, served)):
        assert time.monotonic() < deadline, "no call record for the trip served by the adapter"
        await asyncio.sleep(1)
    live = [r for r in records if not r.shadow]
    assert [(r.model_id, r.prompt_version) for r in live] == [(candidate, "ft1")]

    async with await RegistryApi.connect(url) as api:  # and back: the base model serves
        rolled = await api.ask(Rollback(task=TASK, who="tests", why="end of the test"))
    assert rolled.kind == "ack", rolled
    after = await trip(url, 501, wait=True)
    [base] = [r for r in await calls_of(loop_stack, after) if not r.shadow]
    assert base.model_id != candidate and base.prompt_version == "v1"
