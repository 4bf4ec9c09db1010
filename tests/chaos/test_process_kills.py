"""Every process a saga touches SIGKILLed at random points of running sagas, then restarted:
the inventory (its SQLite file kept), the registry, the LLM tier, nats-server itself (same port
and store), the planner and a domain worker. Hotels are escalated to the LLM tier in every
trip, so its kills land on work it holds.

The RNG is seeded (`CHAOS_SEED` overrides the test's own): the figures printed with `-s` name
the seed, so a failing schedule can be replayed. Lost trips and duplicate bookings are counted
in the stack's own records: the saga KV and the inventory's tables.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import nats
import pytest

from skiff_cli.client import SkiffClient
from skiff_contracts.domains import DOMAINS
from skiff_flywheel.call_log import StreamSource, read_stream
from tests.chaos.harness import Chaos, started
from tests.chaos.scripted import DRAFTS
from tests.chaos.test_saga_failures import assert_clean

pytestmark = pytest.mark.nats

KINDS = ("inventory", "registry", "llm-worker", "nats-server", "planner", "worker")
# A word of the text that is no city: the hotels worker's answer does not ground and goes to
# the LLM tier, whose scripted engine answers Denver.
TO_THE_LLM = {"hotels": [["", {**DRAFTS["hotels"], "location": "travel"}]]}


def escalating(home: Path) -> Chaos:
    """The LLM tier on every trip; a supplier answering in 150 ms, so each phase is hit."""
    return Chaos(
        home,
        worker_env={"CHAOS_SCRIPT": json.dumps(TO_THE_LLM)},
        llm_env={},
        inventory_env={"SKIFF_LATENCY_MS": "150"},
    )


def schedule(kills: int, rng: random.Random) -> list[str]:
    """Every kind as often as the others (each at least once), in a seeded order."""
    order = [KINDS[i % len(KINDS)] for i in range(kills)]
    rng.shuffle(order)
    return order


async def in_flight(chaos: Chaos, client: SkiffClient, trip_ids: list[str]) -> list[str]:
    """The states of the trips not yet finished ([] while JetStream cannot answer)."""
    try:
        records = await chaos.records(client, trip_ids)
    except (nats.errors.Error, TimeoutError):
        return []
    return [r.state for r in records.values() if r is not None and not r.terminal]


def kill(chaos: Chaos, kind: str, rng: random.Random) -> str:
    """SIGKILL one process of `kind`; returns the name to start again."""
    if kind == "nats-server":
        chaos.nats.stop(kill=True)
        return kind
    name = f"worker-{rng.choice(DOMAINS)}" if kind == "worker" else kind
    chaos.kill(name)
    return name


def restart(chaos: Chaos, name: str) -> None:
    if name == "nats-server":
        chaos.nats.start()  # same port, same store
    else:
        chaos.start_process(name)


async def answers_by_tier(url: str) -> tuple[Counter[tuple[str, str]], Counter[str]]:
    """The accepted answers on CALLS: how many per trip and task, and per answering tier."""
    log = await read_stream(StreamSource(url))
    records = [r for r in log if r.get("kind") == "answer_accepted"]
    per_task = Counter((r["trip_id"], r["task"]) for r in records)
    return per_task, Counter(r["answered_by"] for r in records)


async def run_process_kills(chaos: Chaos, kills: int, trips: int, seed: int) -> None:
    seed = int(os.environ.get("CHAOS_SEED", seed))
    rng = random.Random(seed)
    killed: Counter[str] = Counter()
    states_at_kill: Counter[str] = Counter()
    trip_ids: list[str] = []
    per_kill = -(-trips // kills)  # submitted before each kill until `trips` are in
    started_at = time.monotonic()
    async with await SkiffClient.connect(chaos.nats.url) as client:
        for n, kind in enumerate(schedule(kills, rng)):
            for _ in range(min(per_kill, trips - len(trip_ids))):
                trip_ids.append(await chaos.submit(client, f"kill-any-{seed}-{len(trip_ids)}"))
            await asyncio.sleep(rng.uniform(0.05, 1.5))
            states_at_kill.update(await in_flight(chaos, client, trip_ids))
            name = kill(chaos, kind, rng)
            killed[kind] += 1
            if n % 5 == 2:  # sometimes stay down a while: work queues up meanwhile
                await asyncio.sleep(rng.uniform(0.5, 2.0))
            restart(chaos, name)
            await chaos.wait_ready()  # the next kill lands on a working stack, not a booting one
        records = await chaos.wait_terminal(client, trip_ids, timeout_s=180)
    lost = sorted(t for t, r in records.items() if r is None or not r.terminal or r.outbox)
    outcome = Counter(r.state for r in records.values() if r is not None)
    audit = chaos.audit()
    per_task, tiers = await answers_by_tier(chaos.nats.url)
    print(
        json.dumps({
            "test": "process_kills", "seed": seed, "sagas": len(trip_ids),
            "kills": dict(killed), "kills_total": sum(killed.values()),
            "saga_states_hit_by_kills": dict(states_at_kill), "lost": len(lost),
            "duplicate_bookings": audit.duplicate_bookings, "outcomes": dict(outcome),
            "compensated_because": dict(Counter(
                r.reason for r in records.values() if r is not None and r.state == "compensated"
            )),
            "answers_by_tier": dict(tiers),
            "confirm_calls_max_per_key": max(audit.confirm_calls.values(), default=0),
            "seconds": round(time.monotonic() - started_at, 1),
        })
    )  # fmt: skip
    assert lost == [], lost
    assert all(p.poll() is None for p in chaos.processes.values()), "a process exited by itself"
    assert set(killed) == set(KINDS), killed
    assert sum(states_at_kill.values()) > 0, "no kill landed on a running saga"
    expected = {(t, f"{d}.extract") for t in trip_ids for d in DOMAINS}
    assert set(per_task) == expected and set(per_task.values()) == {1}, per_task
    assert tiers["llm"] == len(trip_ids), tiers  # every hotel went through the LLM tier
    assert set(outcome) <= {"completed", "compensated"}, outcome
    compensated = [r for r in records.values() if r is not None and r.state == "compensated"]
    assert all("sold_out" in (r.reason or "") for r in compensated), "compensated, not sold out"
    assert_clean(chaos, expect_bookings=outcome["completed"] * len(DOMAINS))


async def test_every_process_killed_at_random_points_loses_no_trip_and_books_nothing_twice(
    tmp_path: Path,
) -> None:
    async for chaos in started(escalating(tmp_path)):
        await run_process_kills(chaos, kills=18, trips=18, seed=14)


@pytest.mark.slow
async def test_every_process_killed_at_60_random_points(tmp_path: Path) -> None:
    async for chaos in started(escalating(tmp_path)):
        await run_process_kills(chaos, kills=60, trips=60, seed=15)
