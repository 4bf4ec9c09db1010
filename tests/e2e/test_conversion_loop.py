"""The conversion loop end to end on the real stack: trips are logged, `skiff flywheel run`
curates them from the CALLS stream, fine-tunes a LoRA adapter, evaluates it against the
champion and registers it; the registry takes it through shadow, canary and champion on its
gates while live trips flow; the flights worker loads the adapter without a restart and
serves live traffic with it; a rollback puts the base model back.

The stack runs the base models as champions (`skiff up --no-shipped`), so a few training
steps on a few trips can make a candidate that keeps up with one. The gates are loose (a
candidate may trail the champion offline by up to half its slot accuracy; two calls per
stage; the canary takes every trip): the first test is about the machinery, not about the
adapter's quality. They still refuse a candidate that is clearly worse: the second test
registers an adapter broken on purpose (a learning rate fifty times too high) and the
registry halts it at its offline gate instead of rolling it out. The real figures come from
`make models` on the development data (README, "Models").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from skiff_cli import stack
from skiff_cli.client import SkiffClient
from skiff_cli.flywheel_loop import champion_of
from skiff_cli.flywheel_report import load
from skiff_cli.registry_cli import RegistryApi
from skiff_contracts.events import TripFinished
from skiff_contracts.messages import TripRequest
from skiff_contracts.registry import CallRecord, GetHistory, GetModel, History, ModelView, Rollback
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION
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
    "SKIFF_ROLLOUT__OFFLINE_MIN_GAIN": "-0.5",
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
    saved["SKIFF_HOME"] = os.environ.get("SKIFF_HOME")
    os.environ["SKIFF_HOME"] = str(home)  # the CLI's credentials: this stack's passwords
    try:
        running = stack.up(home, threads=1, shipped=False)
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
    assert isinstance(view, ModelView) and view.card.adapter
    assert view.card.prompt_version == ADAPTER_PROMPT_VERSION
    assert isinstance(history, History)
    automatic = [m.status for m in history.moves if m.who == "rollout" and m.model_id == candidate]
    assert automatic == ["shadow", "canary", "champion"], history.moves

    served = await trip(url, 500, wait=False)  # the champion now: the adapter serves it
    deadline = time.monotonic() + 120
    while not (records := await calls_of(loop_stack, served)):
        assert time.monotonic() < deadline, "no call record for the trip served by the adapter"
        await asyncio.sleep(1)
    live = [r for r in records if not r.shadow]
    assert [(r.model_id, r.prompt_version) for r in live] == [(candidate, ADAPTER_PROMPT_VERSION)]

    async with await RegistryApi.connect(url) as api:  # and back: the base model serves
        rolled = await api.ask(Rollback(task=TASK, who="tests", why="end of the test"))
    assert rolled.kind == "ack", rolled
    after = await trip(url, 501, wait=True)
    [base] = [r for r in await calls_of(loop_stack, after) if not r.shadow]
    assert base.model_id != candidate and base.prompt_version == "v1"


async def test_a_clearly_worse_candidate_is_refused_at_the_offline_gate(
    loop_stack: stack.Stack, tmp_path: Path
) -> None:
    url = loop_stack.nats_url
    # Logged trips to train on, the first test's requests (41-48 write what 1-8 do) under their
    # own client ids: the first test may have run or not.
    for n in range(41, 49):
        await trip(url, n, wait=True)
    skiff = str(Path(sys.executable).parent / "skiff")
    dataset, adapter = tmp_path / "dataset", tmp_path / "adapter"
    report, home = tmp_path / "evaluation.json", ["--home", str(loop_stack.home)]

    def run(*args: str) -> None:
        done = subprocess.run([skiff, "flywheel", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr

    run("curate", "--task", TASK, "--output", str(dataset), "--eval-share", str(EVAL_SHARE),
        "--nats-url", url, *home)  # fmt: skip
    run("train", "--task", TASK, "--dataset", str(dataset), "--output", str(adapter),
        "--max-steps", "6", "--learning-rate", "0.05", "--threads", "1")  # fmt: skip
    async with await RegistryApi.connect(url) as api:
        champion = await champion_of(api, TASK)
    assert champion is not None
    baseline = champion.adapter or "base"  # the champion of the day, as the gate requires
    run("evaluate", "--task", TASK, "--dataset", str(dataset), "--candidate", str(adapter),
        "--baseline", baseline, "--output", str(report), "--limit", "4",
        "--threads", "1")  # fmt: skip
    figures = json.loads(report.read_text())["metrics"]
    assert figures["candidate"]["slot_accuracy"] < figures["baseline"]["slot_accuracy"] - 0.5
    per_slot = {k: v for k, v in figures["baseline"].items() if k.startswith("slot.")}
    assert per_slot and all(0 <= v <= 1 for v in per_slot.values())
    run("register", "--task", TASK, "--adapter", str(adapter), "--evaluation", str(report),
        "--version", "broken-1", "--rollout", "auto", "--nats-url", url)  # fmt: skip

    deadline = time.monotonic() + 60
    async with await RegistryApi.connect(url) as api:
        model_id = await api.resolve("smollm2-135m-lora@broken-1")
        while True:
            view = await api.ask(GetModel(model_id=model_id))
            assert isinstance(view, ModelView), view
            if view.card.rollout == "halted" or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        history = await api.ask(GetHistory(task=TASK))
    assert (view.card.status, view.card.rollout) == ("candidate", "halted"), view.card
    assert isinstance(history, History)
    assert [m.status for m in history.moves if m.model_id == model_id] == ["candidate"]
