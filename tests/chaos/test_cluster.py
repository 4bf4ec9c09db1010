"""Sagas on a three-node JetStream cluster on loopback, every stream and bucket at R3, while
nodes are SIGKILLed mid-saga and brought back on their own store: the leader of the saga
records first, then each time another node than the last, as the seeded RNG picks.

Each service connects to one node (`Chaos.url_for`); the servers advertise each other, so a
service whose node dies reconnects to a live one. Trips are also submitted while a node is
down (two of three still make a quorum). Figures are printed with `-s`; `CHAOS_SEED` replays.
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
from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS
from tests.chaos.harness import Chaos, started
from tests.chaos.test_process_kills import answers_by_tier, in_flight
from tests.chaos.test_saga_failures import assert_clean

pytestmark = pytest.mark.nats

SAGAS_STREAM = f"KV_{subjects.BUCKET_SAGAS}"


async def streams(chaos: Chaos) -> dict[str, tuple[int, str | None, bool]]:
    """Per stream: its replica count, its leader, and whether every follower is current."""
    connection = await nats.connect(chaos.urls)
    try:
        infos = await connection.jetstream().streams_info()
    finally:
        await connection.close()
    return {
        str(info.config.name): (
            info.config.num_replicas or 1,
            info.cluster.leader if info.cluster else None,
            all(r.current for r in (info.cluster.replicas or [])) if info.cluster else False,
        )
        for info in infos
    }


async def run_node_kills(
    chaos: Chaos, kills: int, trips: int, seed: int, *, submit_timeout_s: float
) -> None:
    """Trips are also submitted right after each kill, while JetStream moves leaders off the
    dead node. A submission the planner cannot store then is answered `unavailable` and the
    client sends it again (the same request id: one trip); `submit_s` shows how long each
    took, within `submit_timeout_s` per attempt (`SkiffClient`'s own, 45 s)."""
    cluster = chaos.cluster
    assert cluster is not None
    seed = int(os.environ.get("CHAOS_SEED", seed))
    rng = random.Random(seed)
    layout = await streams(chaos)
    assert {replicas for replicas, _, _ in layout.values()} == {3}, layout
    victims: list[str] = []
    states_at_kill: Counter[str] = Counter()
    trip_ids: list[str] = []
    per_round = -(-trips // (2 * kills))  # half before each kill, half while the node is down
    victim = -1
    submit_s: list[float] = []
    back_s: list[float] = []  # per kill: restart until caught up and every service at work
    started_at = time.monotonic()
    # One seed URL, as every service has: the connection follows the cluster's advertisements.
    async with await SkiffClient.connect(chaos.url_for("client")) as client:

        async def submit() -> None:
            for _ in range(min(per_round, trips - len(trip_ids))):
                submitted_at = time.monotonic()
                request_id = f"cluster-{seed}-{len(trip_ids)}"
                trip_ids.append(await chaos.submit(client, request_id, submit_timeout_s))
                submit_s.append(round(time.monotonic() - submitted_at, 1))

        for round_ in range(kills):
            await submit()
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            if round_ == 0:  # the saga records' leader: JetStream elects another mid-saga
                victim = cluster.names.index(str((await streams(chaos))[SAGAS_STREAM][1]))
            else:  # another node than the last: each holds some services' connections
                victim = rng.choice([i for i in range(cluster.size) if i != victim])
            states_at_kill.update(await in_flight(chaos, client, trip_ids))
            cluster.kill(victim)
            victims.append(cluster.names[victim])
            await submit()  # accepted by the two nodes left
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            restarted_at = time.monotonic()
            cluster.restart(victim)  # waits until it has caught up with the others
            await chaos.wait_ready()
            back_s.append(round(time.monotonic() - restarted_at, 1))
        drain_at = time.monotonic()
        records = await chaos.wait_terminal(client, trip_ids, timeout_s=180)
        drain_s = round(time.monotonic() - drain_at, 1)
    after = await streams(chaos)
    lost = sorted(t for t, r in records.items() if r is None or not r.terminal or r.outbox)
    outcome = Counter(r.state for r in records.values() if r is not None)
    audit = chaos.audit()
    per_task, tiers = await answers_by_tier(cluster.urls[0])
    print(
        json.dumps({
            "test": "cluster_node_kills", "seed": seed, "nodes": cluster.size,
            "submit_timeout_s": submit_timeout_s,
            "replicas": 3, "sagas": len(trip_ids), "node_kills": len(victims),
            "killed_nodes": victims, "saga_states_hit_by_kills": dict(states_at_kill),
            "lost": len(lost), "duplicate_bookings": audit.duplicate_bookings,
            "outcomes": dict(outcome), "compensated_because": dict(Counter(
                r.reason for r in records.values() if r is not None and r.state == "compensated"
            )),
            "answers_by_tier": dict(tiers),
            "streams_all_replicas_current": all(current for _, _, current in after.values()),
            "submit_s": submit_s, "restart_to_ready_s": back_s, "drain_s": drain_s,
            "seconds": round(time.monotonic() - started_at, 1),
        })
    )  # fmt: skip
    assert lost == [], lost
    assert all(p.poll() is None for p in chaos.processes.values()), "a process exited by itself"
    assert sum(states_at_kill.values()) > 0, "no kill landed on a running saga"
    expected = {(t, f"{d}.extract") for t in trip_ids for d in DOMAINS}
    assert set(per_task) == expected and set(per_task.values()) == {1}, per_task
    assert set(outcome) <= {"completed", "compensated"}, outcome
    compensated = [r for r in records.values() if r is not None and r.state == "compensated"]
    assert all("sold_out" in (r.reason or "") for r in compensated), "compensated, not sold out"
    assert_clean(chaos, expect_bookings=outcome["completed"] * len(DOMAINS))


def on_three_nodes(home: Path) -> Chaos:
    return Chaos(home, nodes=3, inventory_env={"SKIFF_LATENCY_MS": "150"})


async def test_cluster_nodes_killed_mid_saga_lose_no_trip_and_book_nothing_twice(
    tmp_path: Path,
) -> None:
    async for chaos in started(on_three_nodes(tmp_path)):
        await run_node_kills(chaos, kills=3, trips=12, seed=31, submit_timeout_s=45.0)


@pytest.mark.slow
async def test_cluster_nodes_killed_at_12_random_points(tmp_path: Path) -> None:
    async for chaos in started(on_three_nodes(tmp_path)):
        await run_node_kills(chaos, kills=12, trips=48, seed=32, submit_timeout_s=45.0)
