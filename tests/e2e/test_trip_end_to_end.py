"""The whole system as the README runs it: real nats-server, real planner, four real workers
with the real bundled model, each a separate process started by the local stack. The call log
is read back as the flywheel reads it (its own NATS identity, the stack's password)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError
from typer.testing import CliRunner

from skiff_cli import stack
from skiff_cli.client import SkiffClient, SubmitError
from skiff_cli.flywheel_cli import flywheel_app
from skiff_cli.main import STILL_RUNNING
from skiff_contracts import subjects
from skiff_contracts.domains import HotelsRequest
from skiff_contracts.events import (
    StepChanged,
    TripDeclined,
    TripEvent,
    TripFinished,
    TripNeedsInput,
    TripPlanned,
)
from skiff_contracts.messages import SubmitConflict, TripRequest
from skiff_contracts.registry import CALL_LOG, AnswerAccepted, CallRecord
from skiff_extraction.router import router_card
from skiff_flywheel.call_log import StreamSource, read_stream
from skiff_flywheel.dataset import read_dataset
from skiff_models import shipped_cards

pytestmark = [pytest.mark.nats, pytest.mark.model]

TRIP = (
    "Fly me from Boston to Denver on 12 March, back on the 16th, 2 adults. "
    "Book a hotel in Denver for those nights, rent a compact car at the Denver airport "
    "on the 12th, and add basic travel insurance for both of us."
)


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    home = tmp_path_factory.mktemp("stack")
    running = stack.up(home, threads=1)
    yield running
    stack.down(home)
    assert not any(stack.alive(s.pid) for s in running.services), "a service outlived `down`"


async def call_log(running: stack.Stack, trip_id: str) -> list[CallRecord | AnswerAccepted]:
    """The trip's records on CALLS, read as `flywheel` (nobody else but the registry may)."""
    password = stack.stored_password(running.home, "flywheel")
    source = StreamSource(running.nats_url, user="flywheel", password=password)
    records = [CALL_LOG.validate_python(r) for r in await read_stream(source)]
    return [r for r in records if r.trip_id == trip_id]


async def collect(events: AsyncIterator[TripEvent], into: list[TripEvent]) -> None:
    async for event in events:
        into.append(event)


async def run_trip(running: stack.Stack, request: TripRequest) -> list[TripEvent]:
    async with await SkiffClient.connect(running.nats_url, home=running.home) as client:
        accepted = await client.submit(request)
        return [event async for event in client.events(accepted.trip_id, timeout_s=300)]


async def test_the_demo_trip_books_exactly_what_it_asks_on_the_shipped_champions(
    running_stack: stack.Stack,
) -> None:
    request = TripRequest(text=TRIP, reference_date=date(2026, 3, 1))
    events = await run_trip(running_stack, request)

    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "events lost or reordered"
    planned = next(e for e in events if isinstance(e, TripPlanned))
    assert set(planned.domains) == {"flights", "hotels", "cars", "insurance"}
    finished = events[-1]
    assert isinstance(finished, TripFinished)
    assert finished.state == "completed", finished.reason
    items = {item.domain: item for item in finished.itinerary}
    assert set(items) == {"flights", "hotels", "cars", "insurance"}
    asked = {d: item.params.model_dump(mode="json", exclude={"domain"}, exclude_none=True)
             for d, item in items.items()}  # fmt: skip
    assert asked["flights"] == {
        "origin": "Boston", "origin_iata": "BOS", "destination": "Denver",
        "destination_iata": "DEN", "departure_date": "2026-03-12", "return_date": "2026-03-16",
        "passengers": 2,
    }  # fmt: skip
    assert asked["hotels"] == {
        "location": "Denver", "location_iata": "DEN", "check_in_date": "2026-03-12",
        "check_out_date": "2026-03-16", "guests": 2,
    }  # fmt: skip
    assert asked["cars"] == {
        "pickup_city": "Denver", "pickup_city_iata": "DEN", "pickup_location": "the Denver airport",
        "pickup_airport": "DEN", "pickup_date": "2026-03-12", "dropoff_date": "2026-03-16",
        "car_type": "compact",
    }  # fmt: skip
    held = sum(b.total_price for b in finished.bookings if b.domain != "insurance")
    assert asked["insurance"] == {
        "travelers": 2, "coverage": "basic", "trip_start": "2026-03-12",
        "trip_end": "2026-03-16", "trip_cost": round(held, 2), "trip_cost_currency": "USD",
    }  # fmt: skip
    booked = {b.domain: b.offer for b in finished.bookings}
    assert booked["cars"].kind == "car_offer" and booked["cars"].desk == "airport"
    assert booked["flights"].kind == "flight_offer" and booked["flights"].inbound is not None

    # Every domain was read by its shipped adapter, the champion, with no escalation: the
    # dispatch events and the itinerary name it.
    champions = {d: card.model_id for d, card in shipped_cards().items()}
    dispatched = {
        e.domain: e.detail
        for e in events
        if isinstance(e, StepChanged) and e.operation == "extract" and e.status == "dispatched"
    }
    assert dispatched == champions
    for domain, item in items.items():
        assert item.handled_by == "slm", domain
        assert item.call is not None and item.call.tokens_out > 0
        assert f"{domain}.extract/{item.call.model}@{item.call.version}" == champions[domain]
    dispatched_ops = [
        (e.operation, e.domain)
        for e in events
        if isinstance(e, StepChanged) and e.status == "dispatched"
    ]
    for operation in ("extract", "hold", "confirm"):
        assert sorted(d for op, d in dispatched_ops if op == operation) == sorted(items), operation

    # The call log: every model call, and one accepted answer per domain, naming its call.
    log = await call_log(running_stack, finished.trip_id)
    calls = {r.record_id: r for r in log if isinstance(r, CallRecord)}
    answers = {r.task: r for r in log if isinstance(r, AnswerAccepted)}
    assert set(answers) == {f"{d}.extract" for d in items}
    assert {r.task for r in calls.values() if r.tier == "slm"} == {*answers, "router.route"}
    (routed,) = [r for r in calls.values() if r.task == "router.route"]
    assert routed.model_id == router_card().model_id  # the registered champion routed it
    assert routed.valid and routed.output is not None
    assert routed.output["labels"] == ["flights", "hotels", "cars", "insurance"]
    for domain, item in items.items():
        answer = answers[f"{domain}.extract"]
        assert answer.answered_by == item.handled_by, domain
        assert answer.call_record_id in calls, domain
        assert calls[answer.call_record_id].valid and answer.draft is not None
    # The domain's own extraction: the flight's is what was booked (the others were completed
    # from it before their holds).
    flights = items["flights"].params
    assert answers["flights.extract"].params == flights.model_dump(mode="json")
    assert [r for r in calls.values() if r.tier == "llm"] == []  # nothing was escalated

    # `skiff flywheel curate` against the running stack: examples from accepted answers.
    output = running_stack.home / "dataset-flights"
    args = [
        *("curate", "--task", "flights.extract", "--output", str(output), "--eval-share", "0"),
        "--nats-url",
        running_stack.nats_url,
        "--home",
        str(running_stack.home),
    ]
    result = await asyncio.to_thread(CliRunner().invoke, flywheel_app, args)
    assert result.exit_code == 0, result.output
    _, splits = read_dataset(output)
    assert splits["train"] and all(e.example_id.endswith(":accepted") for e in splits["train"])


async def test_the_same_client_request_id_is_one_trip(running_stack: stack.Stack) -> None:
    request = TripRequest(
        text="A hotel in Chicago from March 3rd to March 5th.",
        reference_date=date(2026, 3, 1),
        client_request_id="e2e-duplicate",
    )
    async with await SkiffClient.connect(running_stack.nats_url, home=running_stack.home) as client:
        first = await client.submit(request)
        second = await client.submit(request)
        with pytest.raises(SubmitError) as conflict:  # the same id for another trip
            await client.submit(request.model_copy(update={"text": "A hotel in Boston instead."}))
        events = [e async for e in client.events(first.trip_id, timeout_s=300)]
    assert isinstance(conflict.value.rejected, SubmitConflict)
    assert conflict.value.rejected.trip_id == first.trip_id
    assert (first.duplicate, second.duplicate) == (False, True)
    assert first.trip_id == second.trip_id
    assert sum(isinstance(e, TripPlanned) for e in events) == 1


async def test_an_ambiguous_city_asks_the_user_and_the_answer_books_it(
    running_stack: stack.Stack,
) -> None:
    request = TripRequest(
        text="A hotel in Springfield from March 3rd to March 5th.",
        reference_date=date(2026, 3, 1),
    )
    async with await SkiffClient.connect(running_stack.nats_url, home=running_stack.home) as client:
        accepted = await client.submit(request)
        events: list[TripEvent] = []
        async for event in client.events(accepted.trip_id, timeout_s=400):
            events.append(event)
            if isinstance(event, TripNeedsInput):
                assert "Springfield, IL" in event.question, event.question
                assert "Springfield, MO" in event.question, event.question
                await client.answer(accepted.trip_id, "Springfield, Illinois")
    asked = [e for e in events if isinstance(e, TripNeedsInput)]
    assert len(asked) == 1, [e.question for e in asked]
    finished = events[-1]
    assert isinstance(finished, TripFinished) and finished.state == "completed", finished
    (item,) = finished.itinerary
    assert isinstance(item.params, HotelsRequest)
    assert item.params.location_iata == "SPI"  # Springfield, Illinois (Abraham Lincoln Capital)

    # The LLM tier's candidates are on the call log, and the answer accepted after the
    # user's reply is the user's.
    log = await call_log(running_stack, accepted.trip_id)
    (answer,) = [r for r in log if isinstance(r, AnswerAccepted)]
    assert answer.answered_by == "user" and "Springfield, Illinois" in answer.input_text
    assert answer.params["location_iata"] == "SPI"
    llm = [r for r in log if isinstance(r, CallRecord) and r.tier == "llm"]
    assert llm and all((r.task, r.step) == ("hotels.extract", "hotels.resolve") for r in llm)


async def test_skiff_trip_waiting_on_a_question_ends_cleanly_at_its_timeout(
    running_stack: stack.Stack,
) -> None:
    """Without a terminal `skiff trip` says how to answer, waits, and at --timeout says the
    trip goes on (exit 3), instead of a traceback. Run as its own process, as users run it
    (in-process it would install its tracer provider as this test process's global one)."""
    command = [str(Path(sys.executable).parent / "skiff"), "trip",
               "I need a one-way flight on 18 March, 1 passenger.",
               "--reference-date", "2026-03-01", "--timeout", "60",
               "--nats-url", running_stack.nats_url]  # fmt: skip
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=180, env={**os.environ, "SKIFF_HOME": str(running_stack.home)},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == STILL_RUNNING, output
    assert "question:" in output and "answer with: skiff answer trip-" in output
    assert "did not finish within 60 s" in output and "Traceback" not in output


async def test_a_second_client_can_neither_follow_answer_cancel_nor_read_the_trip(
    running_stack: stack.Stack,
) -> None:
    """`mobile` knows the id of `cli`'s trip: its cancel and answer are dropped by the planner,
    its status query gets nothing, and following finds no event (its own subjects are empty;
    NATS refuses it the owner's). The owner's trip books as if nothing happened."""
    url, home = running_stack.nats_url, running_stack.home
    with pytest.raises(NatsError, match=r"(?i)authorization"):  # no anonymous access at all
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
    request = TripRequest(
        text="A hotel in Chicago from March 10th to March 12th.", reference_date=date(2026, 3, 1)
    )
    async with (
        await SkiffClient.connect(url, home=home) as owner,
        await SkiffClient.connect(url, identity="mobile", home=home) as other,
    ):
        accepted = await owner.submit(request)
        await other.cancel(accepted.trip_id)
        await other.answer(accepted.trip_id, "Make it Boston instead.")
        assert await other.saga(accepted.trip_id) is None
        seen: list[TripEvent] = []
        with pytest.raises(TimeoutError):
            await collect(other.events(accepted.trip_id, timeout_s=5), seen)
        assert seen == []
        events = [e async for e in owner.events(accepted.trip_id, timeout_s=300)]
        record = await owner.saga(accepted.trip_id)
    finished = events[-1]
    assert isinstance(finished, TripFinished) and finished.state == "completed", finished
    assert record is not None and record.owner == "cli" and not record.cancel_requested
    assert record.answers == ()


@pytest.mark.parametrize("text", ["", "x" * 5000])
async def test_empty_and_oversized_requests_get_a_typed_rejection(
    running_stack: stack.Stack, text: str
) -> None:
    request = TripRequest.model_construct(text=text, reference_date=date(2026, 3, 1))
    async with await SkiffClient.connect(running_stack.nats_url, home=running_stack.home) as client:
        with pytest.raises(SubmitError) as rejected:
            await client.submit(request)
    assert rejected.value.rejected.errors[0].field == "text"


async def test_malformed_json_gets_a_typed_rejection(running_stack: stack.Stack) -> None:
    async with await SkiffClient.connect(running_stack.nats_url, home=running_stack.home) as client:
        subject = subjects.trip_submit(client.owner)
        reply = await client.connection.request(subject, b"{nope", timeout=10)
    assert b'"kind":"submit_rejected"' in reply.data


async def test_a_request_for_nothing_skiff_books_is_declined_and_logged_as_no_model(
    running_stack: stack.Stack,
) -> None:
    request = TripRequest(
        text="Reserve a table for two at a sushi restaurant tonight.",
        reference_date=date(2026, 3, 1),
    )
    events = await run_trip(running_stack, request)
    (declined,) = [e for e in events if isinstance(e, TripDeclined)]
    assert declined.unsupported == ("restaurants",)
    assert declined.bookable == ("flights", "hotels", "cars", "insurance")
    finished = events[-1]
    assert isinstance(finished, TripFinished) and finished.state == "failed"
    assert not [e for e in events if isinstance(e, StepChanged)]  # nothing was booked
    log = await call_log(running_stack, declined.trip_id)
    calls = [r for r in log if isinstance(r, CallRecord)]
    routed = [r for r in calls if r.task == "router.route"]
    assert [(r.tier, r.valid, r.model_id) for r in routed] == [
        ("slm", True, router_card().model_id)
    ]
    assert [(r.task, r.reason) for r in calls if r.tier == "llm"] == [
        ("restaurants.extract", "no_model")
    ]


async def test_a_travel_request_the_router_cannot_place_is_escalated_then_asked(
    running_stack: stack.Stack,
) -> None:
    """The router finds nothing in it; the LLM tier (the stand-in) gives no valid answer; so
    the trip asks what to book, and routes the request with the answer."""
    request = TripRequest(text="I need to be in Denver by Friday.", reference_date=date(2026, 3, 1))
    async with await SkiffClient.connect(running_stack.nats_url, home=running_stack.home) as client:
        accepted = await client.submit(request)
        events: list[TripEvent] = []
        async for event in client.events(accepted.trip_id, timeout_s=300):
            events.append(event)
            if isinstance(event, TripNeedsInput) and not event.domains:
                assert "flights, hotels, rental cars and travel insurance" in event.question
                await client.answer(accepted.trip_id, "A flight from Boston, please.")
            if isinstance(event, TripPlanned):
                await client.cancel(accepted.trip_id)
    asked = [e for e in events if isinstance(e, TripNeedsInput)]
    planned = [e for e in events if isinstance(e, TripPlanned)]
    assert asked and asked[0].domains == ()
    assert [(p.domains, p.routed_by) for p in planned] == [(("flights",), "slm")]
    log = await call_log(running_stack, accepted.trip_id)
    routed = sorted(
        (r for r in log if isinstance(r, CallRecord) and r.task == "router.route"),
        key=lambda r: r.record_id,
    )
    assert [(r.tier, r.valid, r.reason) for r in routed] == [
        ("slm", False, "ambiguous"), ("llm", False, "ambiguous"), ("slm", True, None)
    ]  # fmt: skip


def test_services_log_json_lines(running_stack: stack.Stack) -> None:
    log = Path(running_stack.home / "planner.log").read_text()
    assert '"service": "planner"' in log or '"service":"planner"' in log
