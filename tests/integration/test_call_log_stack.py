"""S1 and S2 of the conversion loop on a running stack: every process real (nats-server with
JetStream, planner, four workers, the LLM worker, the registry, the inventory) but the models,
which are scripted (tests/chaos/scripted.py) so a trip takes seconds.

One trip is answered three ways — the SLM (cars, insurance), the LLM tier after an ungrounded
hotel, the user (the flight's origin, asked for) — and asks for a train no micro-SLM covers.
Its text and the user's answer carry PII. The CALLS stream is then read as the flywheel reads
it, the registry's metrics checked, and `skiff flywheel curate` run against the stream. A
second test kills the planner between accepting the answers and publishing them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from typer.testing import CliRunner

from skiff_cli.client import SkiffClient
from skiff_cli.flywheel_cli import flywheel_app
from skiff_contracts import subjects
from skiff_contracts.messages import TripRequest
from skiff_contracts.registry import (
    CALL_LOG,
    AnswerAccepted,
    CallRecord,
    GetModel,
    GetSeries,
    ModelView,
    Series,
    model_id_for,
)
from skiff_contracts.saga import SagaRecord
from skiff_flywheel.call_log import StreamSource, read_stream
from skiff_flywheel.dataset import read_dataset
from skiff_runtime.jetstream import REGISTRY_CALLS
from tests.chaos.harness import REFERENCE_DATE, Chaos
from tests.chaos.scripted import LLM_NAME, LLM_VERSION, MODEL_NAME, MODEL_VERSION
from tests.integration.registry_harness import ask, eventually

pytestmark = pytest.mark.nats

# Short on purpose: the evidence check reads only a request's first 200 characters
# (`skiff_travel.text.MAX_INPUT`), and the user's answer must fall inside them.
TEXT = (
    "I'm Jane Porter, jane.porter@example.com. Fly to Denver March 12th, back March 16th, "
    "2 passengers. Hotel at the Atlantis in Denver, a compact car, basic insurance, a train to "
    "Aspen."
)
ANSWER = "From Boston. Card 4111 1111 1111 1111, call (415) 555-0132, passport X1234567."
PII = (
    "Jane", "Porter", "jane.porter@example.com", "555-0132", "4111 1111 1111 1111",
    "4111111111111111", "X1234567",
)  # fmt: skip
FLIGHT = {"destination": "Denver", "departure_date": "March 12th", "return_date": "March 16th",
          "passengers": 2}  # fmt: skip
STAY = {"check_in_date": "March 12th", "check_out_date": "March 16th"}
SLM_SCRIPT = {
    # Without an origin the trip asks for one; the answer names it.
    "flights": [["From Boston", {**FLIGHT, "origin": "Boston"}], ["", FLIGHT]],
    "hotels": [["", {**STAY, "location": "Atlantis"}]],  # no such city: the LLM tier's turn
}
LLM_SCRIPT = {"hotels": [["", {**STAY, "location": "Denver"}]]}


ROUTE = {"domains": ["flights", "hotels", "cars", "insurance"], "unsupported": ["trains"]}


def three_ways(home: Path) -> Chaos:
    return Chaos(
        home,
        # Hotels answers last, so its escalation goes out when the flight's values are known
        # (the LLM tier's context); in parallel, the order would be the machine's.
        worker_env={
            "CHAOS_SCRIPT": json.dumps(SLM_SCRIPT),
            "CHAOS_DOMAIN_DELAY_S": json.dumps({"hotels": 1.5}),
        },
        planner_env={"CHAOS_ROUTE": json.dumps(ROUTE)},
        llm_env={"CHAOS_LLM_SCRIPT": json.dumps(LLM_SCRIPT)},
    )


async def running(chaos: Chaos) -> AsyncIterator[Chaos]:
    await chaos.start()
    try:
        yield chaos
    finally:
        chaos.stop()


async def call_log(chaos: Chaos, task: str | None = None) -> list[CallRecord | AnswerAccepted]:
    """The stream as the flywheel reads it, every record parsed (so every one is readable)."""
    return [CALL_LOG.validate_python(r) for r in await read_stream(StreamSource(chaos.nats.url),
                                                                    task=task)]  # fmt: skip


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


async def book_three_ways(chaos: Chaos) -> str:
    async with await SkiffClient.connect(chaos.nats.url) as client:
        request = TripRequest(text=TEXT, reference_date=REFERENCE_DATE, client_request_id="s1")
        trip_id = (await client.submit(request)).trip_id
        deadline = time.monotonic() + 60
        while (record := await client.saga(trip_id)) is None or record.state != "needs_input":
            assert time.monotonic() < deadline, record
            await asyncio.sleep(0.2)
        assert record.question is not None and "where you fly from" in record.question
        await client.answer(trip_id, ANSWER)
        (done,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=90)).values()
    assert done is not None and done.state == "completed", done
    return trip_id


async def test_a_trip_answered_three_ways_leaves_its_calls_and_answers_on_the_log(
    tmp_path: Path,
) -> None:
    async for chaos in running(three_ways(tmp_path)):
        trip_id = await book_three_ways(chaos)
        log = await call_log(chaos)
        calls = [r for r in log if isinstance(r, CallRecord)]
        answers = {r.task: r for r in log if isinstance(r, AnswerAccepted)}

        # The micro-SLM calls: flights and hotels twice (again after the user's answer), and
        # the routing decision (the chaos planner's fixed router, not yet registered).
        slm = Counter(r.task for r in calls if r.tier == "slm")
        assert slm == {"flights.extract": 2, "hotels.extract": 2, "cars.extract": 1,
                       "insurance.extract": 1, "router.route": 1}  # fmt: skip
        (routed,) = [r for r in calls if r.task == "router.route"]
        assert (routed.model_id, routed.valid, routed.step) == (
            "router.route/unregistered@0",
            True,
            "route",
        )
        # The LLM tier: one record per candidate of the escalated step; its first one won.
        (llm,) = [r for r in calls if r.tier == "llm" and r.task == "hotels.extract"]
        assert (llm.step, llm.valid) == ("hotels.resolve", True)
        assert llm.model_id == model_id_for("llm", LLM_NAME, LLM_VERSION)
        assert llm.input_text is not None and "The trip's flight goes" in llm.input_text
        escalated = next(r for r in calls if r.task == "hotels.extract" and r.tier == "slm")
        assert (escalated.valid, escalated.reason) == (False, "ungrounded")
        # Work no micro-SLM covers, under its own task, for the flywheel to find.
        (train,) = [r for r in calls if r.task == "trains.extract"]
        assert (train.tier, train.reason, train.step) == ("llm", "no_model", "unsupported.resolve")

        # One accepted answer per domain, naming who gave it and the call it came from.
        assert {t: a.answered_by for t, a in answers.items()} == {
            "flights.extract": "user", "hotels.extract": "llm", "cars.extract": "slm",
            "insurance.extract": "slm",
        }  # fmt: skip
        assert sum(isinstance(r, AnswerAccepted) for r in log) == 4
        ids = {r.record_id for r in calls}
        assert all(a.call_record_id in ids for a in answers.values())
        assert answers["hotels.extract"].call_record_id == llm.record_id
        flights = answers["flights.extract"]
        assert flights.trip_id == trip_id and flights.input_text.endswith(
            "From Boston. Card [CARD], call [PHONE], passport [PASSPORT]."
        )
        assert flights.draft is not None and flights.draft["origin"] == "Boston"
        assert flights.params["origin_iata"] == "BOS"
        assert answers["cars.extract"].model_id == model_id_for(
            "cars.extract", MODEL_NAME, MODEL_VERSION
        )

        # Nothing the PII corpus would catch left any process unredacted.
        for record in log:
            found = [s for s in strings(record.model_dump(mode="json")) if any(p in s for p in PII)]
            assert not found, (type(record).__name__, found)

        await registry_numbers(chaos)
        await curate_from_the_stream(chaos, tmp_path)


async def registry_numbers(chaos: Chaos) -> None:
    """The registry took both kinds of record: SLM share from accepted answers, agreement."""
    connection = await nats.connect(chaos.nats.url)
    try:

        async def caught_up() -> bool:
            js = connection.jetstream()
            info = await js.consumer_info(REGISTRY_CALLS.stream, REGISTRY_CALLS.durable)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(caught_up, timeout=30)

        async def totals(task: str) -> dict[str, Any]:
            """The task's counts over every interval: one trip's calls may straddle two."""
            series = await ask(connection, GetSeries(task=task))
            assert isinstance(series, Series) and series.points, task
            counts: dict[str, Any] = {
                name: sum(getattr(p, name) for p in series.points)
                for name in ("answers", "slm_accepted", "llm_calls")
            }
            answers = counts["answers"]
            counts["slm_share"] = counts["slm_accepted"] / answers if answers else None
            return counts

        async def shares() -> bool:
            return (await totals("cars.extract"))["slm_share"] == 1.0

        await eventually(shares, timeout=30)
        flights, hotels = await totals("flights.extract"), await totals("hotels.extract")
        assert (flights["answers"], flights["slm_accepted"], flights["slm_share"]) == (1, 0, 0.0)
        assert (hotels["answers"], hotels["slm_accepted"], hotels["llm_calls"]) == (1, 0, 1)
        assert (await totals("trains.extract"))["llm_calls"] == 1

        async def agreement(task: str) -> Any:
            model_id = model_id_for(task, MODEL_NAME, MODEL_VERSION)
            view = await ask(connection, GetModel(model_id=model_id))
            assert isinstance(view, ModelView) and view.metrics is not None
            return view.metrics.total

        cars, flights_model = await agreement("cars.extract"), await agreement("flights.extract")
        assert (cars.answers_judged, cars.answer_agreement) == (1, 1.0)
        # Its first reading (no origin) was not the accepted answer; the second was.
        assert (flights_model.answers_judged, flights_model.answer_agreement) == (2, 0.5)
    finally:
        await connection.close()


async def curate_from_the_stream(chaos: Chaos, home: Path) -> None:
    """`skiff flywheel curate` reads the stream; `export` then `curate --input` agrees."""
    where = ["--nats-url", chaos.nats.url, "--home", str(home / "no-stack")]

    def run(*args: str) -> Any:
        result = CliRunner().invoke(flywheel_app, [*args, *where])
        assert result.exit_code == 0, result.output
        return result

    for task, by in (("flights.extract", "user"), ("hotels.extract", "llm")):
        output = home / task
        await asyncio.to_thread(run, "curate", "--task", task, "--output", str(output),
                                "--eval-share", "0")  # fmt: skip
        manifest, splits = read_dataset(output)
        assert len(splits["train"]) == 1, manifest
        (example,) = splits["train"]
        assert (example.answered_by, example.source) == (by, "calls")
        assert example.example_id.endswith(f":{task.split('.')[0]}:accepted")
        assert not any(p in example.text for p in PII)
        assert manifest.dropped["not_accepted"] >= 1  # the escalated (or first) reading
    _, splits = read_dataset(home / "hotels.extract")
    assert splits["train"][0].spans == {"location": "Denver", **STAY}

    export = home / "calls.jsonl"
    await asyncio.to_thread(run, "export", "--output", str(export))
    assert len(export.read_text().splitlines()) == len(await call_log(chaos))
    again = home / "again"
    await asyncio.to_thread(run, "curate", "--task", "flights.extract", "--input", str(export),
                            "--output", str(again), "--eval-share", "0")  # fmt: skip
    assert read_dataset(again)[0].sha256 == read_dataset(home / "flights.extract")[0].sha256


async def stored_saga(chaos: Chaos, trip_id: str) -> SagaRecord:
    """The saga record as stored (this test stack's NATS asks for no credentials)."""
    connection = await nats.connect(chaos.nats.url)
    try:
        entry = await (await connection.jetstream().key_value(subjects.BUCKET_SAGAS)).get(trip_id)
        assert entry.value is not None
        return SagaRecord.model_validate_json(entry.value)
    finally:
        await connection.close()


async def test_a_planner_crash_between_accepting_and_publishing_neither_loses_nor_doubles(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "crashed"
    crashing = Chaos(tmp_path / "stack", planner_env={"CHAOS_CRASH_AT_ACCEPT": str(marker)})
    async for chaos in running(crashing):
        async with await SkiffClient.connect(chaos.nats.url) as client:
            trip_id = await chaos.submit(client, "crash-at-accept")
            planner = chaos.processes["planner"]
            deadline = time.monotonic() + 60
            while planner.poll() is None:
                assert time.monotonic() < deadline, "the planner never reached its accept"
                await asyncio.sleep(0.1)
            assert planner.returncode == 137 and marker.exists()
            chaos.processes.pop("planner")
            record = await stored_saga(chaos, trip_id)  # no planner to ask: the bucket itself
            assert record is not None and record.state == "holding"  # decided and stored…
            pending = [i for i in record.outbox if isinstance(i, AnswerAccepted)]
            assert len(pending) == 4  # …but not yet published
            assert [r for r in await call_log(chaos) if isinstance(r, AnswerAccepted)] == []
            chaos.start_planner()  # its sweeper publishes what the dead one left behind
            (done,) = (await chaos.wait_terminal(client, [trip_id], timeout_s=90)).values()
        assert done is not None and done.state == "completed", done
        answers = [r for r in await call_log(chaos) if isinstance(r, AnswerAccepted)]
        assert sorted(a.task for a in answers) == [
            "cars.extract", "flights.extract", "hotels.extract", "insurance.extract",
        ]  # fmt: skip
        assert {a.answered_by for a in answers} == {"slm"}
        assert marker.read_text() in {a.record_id for a in answers}
