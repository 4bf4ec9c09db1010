"""The saga under failure, with every part real but the model (scripted so sagas take seconds):
processes killed with SIGKILL, NATS restarted, holds sold out or expired, poison messages.

Figures are printed (run with `-s`): sagas, kills and the saga states they hit, lost trips and
duplicate bookings counted in the inventory's own tables.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from skiff_cli.client import SkiffClient
from skiff_contracts import subjects
from skiff_contracts.domains import DOMAINS, FlightsRequest
from skiff_contracts.messages import Extracted
from skiff_runtime.jetstream import STREAM_DLQ, dlq_subject
from tests.chaos.harness import Chaos, accepted_answers, layout, result_messages, started

pytestmark = pytest.mark.nats


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Chaos]:
    async for chaos in started(Chaos(tmp_path)):
        yield chaos


def assert_clean(chaos: Chaos, expect_bookings: int) -> None:
    audit = chaos.audit()
    assert audit.duplicate_bookings == 0, audit.confirmed
    assert sum(audit.confirmed.values()) == expect_bookings
    assert audit.live_holds == [], "holds left behind"
    assert audit.unbalanced == [], "stock counters disagree with holds"
    assert audit.stale_confirms == [], "an expired hold was confirmed"


async def run_planner_kills(chaos: Chaos, kills: int, trips: int, seed: int) -> None:
    rng = random.Random(seed)
    states_at_kill: Counter[str] = Counter()
    trip_ids: list[str] = []
    started_at = time.monotonic()
    async with await SkiffClient.connect(chaos.nats.url) as client:
        for kill in range(kills):
            if len(trip_ids) < trips:  # keep sagas in flight for most of the kills
                trip_ids.append(await chaos.submit(client, f"kill-{seed}-{len(trip_ids)}"))
            await asyncio.sleep(rng.uniform(0.05, 1.2))
            for record in (await chaos.records(client, trip_ids)).values():
                if record is not None and not record.terminal:
                    states_at_kill[record.state] += 1
            chaos.kill("planner")
            if kill % 7 == 3:  # sometimes stay down a while: replies queue up meanwhile
                await asyncio.sleep(rng.uniform(0.5, 2.0))
            chaos.start_planner()
            await chaos.wait_consuming()  # the next kill lands while it works, not while it boots
        records = await chaos.wait_terminal(client, trip_ids, timeout_s=180)
    lost = [t for t, r in records.items() if r is None or not r.terminal]
    outcome = Counter(r.state for r in records.values() if r is not None)
    audit = chaos.audit()
    # Every trip got past extraction, so each domain's answer was accepted: once on CALLS.
    answers = await accepted_answers(chaos.nats.url)
    expected = {(t, f"{d}.extract") for t in trip_ids for d in DOMAINS}
    print(
        json.dumps({
            "sagas": len(trip_ids), "planner_kills": kills,
            "saga_states_hit_by_kills": dict(states_at_kill), "lost": len(lost),
            "duplicate_bookings": audit.duplicate_bookings, "outcomes": dict(outcome),
            "compensated_because": dict(Counter(
                (r.reason or "").split(": ")[-1] for r in records.values()
                if r is not None and r.state == "compensated"
            )),
            "confirm_calls_max_per_key": max(audit.confirm_calls.values(), default=0),
            "accepted_answers": sum(answers.values()),
            "seconds": round(time.monotonic() - started_at, 1),
        })
    )  # fmt: skip
    assert lost == []
    assert set(answers) == expected and set(answers.values()) == {1}, answers
    assert set(outcome) <= {"completed", "compensated"}  # compensated only when sold out
    assert {"extracting", "holding", "confirming"} <= set(states_at_kill), states_at_kill
    assert_clean(chaos, expect_bookings=outcome["completed"] * len(DOMAINS))


def slow_supplier(home: Path) -> Chaos:
    """A supplier answering in 150 ms, so sagas spend long enough in every phase to be hit."""
    return Chaos(home, inventory_env={"SKIFF_LATENCY_MS": "150"})


async def test_planner_killed_at_50_random_points_loses_nothing_and_books_nothing_twice(
    tmp_path: Path,
) -> None:
    async for chaos in started(slow_supplier(tmp_path)):
        await run_planner_kills(chaos, kills=50, trips=30, seed=1)


@pytest.mark.slow
async def test_planner_killed_at_200_random_points(tmp_path: Path) -> None:
    async for chaos in started(slow_supplier(tmp_path)):
        await run_planner_kills(chaos, kills=200, trips=120, seed=2)


async def test_a_worker_killed_mid_task_is_redelivered_and_completes_once(tmp_path: Path) -> None:
    slow = Chaos(tmp_path, worker_env={"CHAOS_ENGINE_DELAY_S": "3"})
    async for chaos in started(slow):
        async with await SkiffClient.connect(chaos.nats.url) as client:
            trip_id = await chaos.submit(client, "worker-crash")
            await asyncio.sleep(1.0)  # the flights worker is inside its 3 s model call
            chaos.kill("worker-flights")
            chaos.start_worker("flights")
            (record,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=90)).values()
        assert record is not None and record.state == "completed", record
        step = record.steps["flights.extract"]
        assert isinstance(step.result, Extracted) and step.attempt == 1
        assert await result_messages(chaos.nats.url, trip_id, "flights.extract") == 1
        assert_clean(chaos, expect_bookings=len(DOMAINS))


async def test_a_forged_reply_for_a_waiting_step_is_ignored(tmp_path: Path) -> None:
    """A reply published on the flights results while the flights step waits for its worker,
    naming no command the planner sent: the planner drops it, and the worker's answer is the
    one the trip goes on with."""
    slow = Chaos(tmp_path, worker_env={"CHAOS_ENGINE_DELAY_S": "3"})
    async for chaos in started(slow):
        async with await SkiffClient.connect(chaos.nats.url) as client:
            trip_id = await chaos.submit(client, "forged-reply")
            await asyncio.sleep(1.0)  # the flights worker is inside its 3 s model call
            waiting = await client.saga(trip_id)
            assert waiting is not None and waiting.steps["flights.extract"].status == "dispatched"
            forged = Extracted(
                trip_id=trip_id, step="flights.extract", domain="flights",
                command_id=f"{trip_id}:flights.extract:forged",
                params=FlightsRequest(origin="Nowhere", destination="Elsewhere", passengers=9),
            )  # fmt: skip
            connection = await nats.connect(chaos.nats.url)
            try:
                await connection.jetstream().publish(
                    subjects.result("flights"), forged.model_dump_json().encode(),
                    stream=subjects.STREAM_RESULTS,
                )  # fmt: skip
            finally:
                await connection.close()
            (record,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=90)).values()
        assert record is not None and record.state == "completed", record
        step = record.steps["flights.extract"]
        assert isinstance(step.result, Extracted) and step.result.call is not None
        assert step.result.command_id == step.command_id == f"{trip_id}:flights.extract:1"
        assert step.result.params.model_dump()["passengers"] != 9
        assert await result_messages(chaos.nats.url, trip_id, "flights.extract") == 2
        assert_clean(chaos, expect_bookings=len(DOMAINS))


async def test_a_nats_restart_mid_saga_loses_no_acknowledged_message(stack: Chaos) -> None:
    async with await SkiffClient.connect(stack.nats.url) as client:
        trip_ids = [await stack.submit(client, f"nats-restart-{i}") for i in range(3)]
        await asyncio.sleep(0.8)
        stack.nats.restart()
        records = await stack.wait_terminal(client, trip_ids, timeout_s=120)
        for trip_id in trip_ids:
            events = [e async for e in client.events(trip_id, timeout_s=30)]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {r.state for r in records.values() if r} == {"completed"}
    assert_clean(stack, expect_bookings=3 * len(DOMAINS))


async def test_a_duplicate_submission_inside_and_after_the_window_is_one_trip(
    tmp_path: Path,
) -> None:
    short = Chaos(tmp_path, layout=layout(dup_window_s=1.0))
    async for chaos in started(short):
        async with await SkiffClient.connect(chaos.nats.url) as client:
            request_id = "same-request"
            first = await chaos.submit(client, request_id)
            inside = await chaos.submit(client, request_id)
            await chaos.wait_terminal(client, [first], timeout_s=60)
            await asyncio.sleep(1.5)  # past JetStream's duplicate window
            after = await chaos.submit(client, request_id)
            record = await client.saga(first)
        assert first == inside == after
        assert record is not None and record.state == "completed"
        assert_clean(chaos, expect_bookings=len(DOMAINS))


async def test_a_sold_out_hold_compensates_and_puts_stock_back(tmp_path: Path) -> None:
    sold_out = Chaos(tmp_path, inventory_env={"SKIFF_SOLD_OUT_DOMAINS": "hotels"})
    async for chaos in started(sold_out):
        async with await SkiffClient.connect(chaos.nats.url) as client:
            trip_id = await chaos.submit(client, "sold-out")
            (record,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=60)).values()
            events = [e async for e in client.events(trip_id, timeout_s=10)]
        assert record is not None and record.state == "compensated"
        assert "sold_out" in (record.reason or "")
        cancels = [
            e.domain for e in events
            if getattr(e, "operation", None) == "cancel" and e.status == "succeeded"  # type: ignore[union-attr]
        ]  # fmt: skip
        assert cancels == ["cars", "hotels", "flights"]  # newest hold first
        assert_clean(chaos, expect_bookings=0)


async def test_holds_that_expired_before_the_pivot_are_held_again_never_confirmed_stale(
    tmp_path: Path,
) -> None:
    expiring = Chaos(
        tmp_path,
        inventory_env={"SKIFF_HOLD_TTL_S": "4", "SKIFF_LATENCY_MS": "300"},
        planner_env={"SKIFF_HOLD_MARGIN_S": "1"},
    )
    async for chaos in started(expiring):
        async with await SkiffClient.connect(chaos.nats.url) as client:
            trip_id = await chaos.submit(client, "expiry")
            while (record := await client.saga(trip_id)) is None or record.state != "holding":  # noqa: ASYNC110  (polls another process)
                await asyncio.sleep(0.05)
            # Insurance is held last, priced on the others: while its worker is down they age.
            chaos.kill("worker-insurance")
            await asyncio.sleep(6)
            chaos.start_worker("insurance")
            (record,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=90)).values()
        assert record is not None and record.state == "completed", record
        assert len(record.compensations) > len(DOMAINS), "nothing was held again"
        assert_clean(chaos, expect_bookings=len(DOMAINS))


async def test_a_poison_message_is_dead_lettered_while_other_trips_go_on(tmp_path: Path) -> None:
    poison_layout = Chaos(tmp_path, layout=layout(max_deliver=3))
    async for chaos in started(poison_layout):
        connection = await nats.connect(chaos.nats.url)
        js = connection.jetstream()
        kv = await js.key_value(subjects.BUCKET_SAGAS)
        await kv.put("trip-poisoned", b"{not a saga record")  # every delivery will fail
        reply = Extracted(
            trip_id="trip-poisoned", step="cars.extract", domain="cars", params={"domain": "cars"}
        )  # type: ignore[arg-type]
        await js.publish(subjects.result("cars"), reply.model_dump_json().encode())
        async with await SkiffClient.connect(chaos.nats.url) as client:
            trip_id = await chaos.submit(client, "healthy")
            (record,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=60)).values()
        dead = await js.subscribe(dlq_subject(subjects.STREAM_RESULTS), stream=STREAM_DLQ,
                                  ordered_consumer=True)  # fmt: skip
        message = await dead.next_msg(timeout=30)
        await connection.close()
        assert record is not None and record.state == "completed"
        assert message.headers is not None
        assert message.headers["Skiff-Dlq-Deliveries"] == "3"
        assert "failed 3 times" in message.headers["Skiff-Dlq-Reason"]
        assert json.loads(message.data)["trip_id"] == "trip-poisoned"
