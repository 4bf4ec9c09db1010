"""The whole system as the README runs it: real nats-server, real planner, four real workers
with the real bundled model, each a separate process started by the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from skiff_cli import stack
from skiff_cli.client import SkiffClient, SubmitError
from skiff_contracts import subjects
from skiff_contracts.domains import FlightsRequest, HotelsRequest
from skiff_contracts.events import (
    StepChanged,
    TripEvent,
    TripFinished,
    TripNeedsInput,
    TripPlanned,
)
from skiff_contracts.messages import TripRequest

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


async def run_trip(url: str, request: TripRequest) -> list[TripEvent]:
    async with await SkiffClient.connect(url) as client:
        accepted = await client.submit(request)
        return [event async for event in client.events(accepted.trip_id, timeout_s=300)]


async def test_a_four_domain_trip_goes_end_to_end(running_stack: stack.Stack) -> None:
    request = TripRequest(text=TRIP, reference_date=date(2026, 3, 1))
    events = await run_trip(running_stack.nats_url, request)

    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "events lost or reordered"
    planned = next(e for e in events if isinstance(e, TripPlanned))
    assert set(planned.domains) == {"flights", "hotels", "cars", "insurance"}
    finished = events[-1]
    assert isinstance(finished, TripFinished)
    assert finished.state == "completed", finished.reason
    items = {item.domain: item for item in finished.itinerary}
    assert set(items) == {"flights", "hotels", "cars", "insurance"}
    flights = items["flights"].params
    assert isinstance(flights, FlightsRequest)
    assert (flights.origin, flights.origin_iata) == ("Boston", "BOS")
    assert (flights.destination, flights.destination_iata) == ("Denver", "DEN")
    assert flights.departure_date == date(2026, 3, 12)
    hotels = items["hotels"].params
    assert isinstance(hotels, HotelsRequest) and hotels.location == "Denver"
    assert all(item.call is not None and item.call.tokens_out > 0 for item in items.values())
    dispatched = [
        (e.operation, e.domain)
        for e in events
        if isinstance(e, StepChanged) and e.status == "dispatched"
    ]
    for operation in ("extract", "hold", "confirm"):
        assert sorted(d for op, d in dispatched if op == operation) == sorted(items), operation


async def test_the_same_client_request_id_is_one_trip(running_stack: stack.Stack) -> None:
    request = TripRequest(
        text="A hotel in Chicago from March 3rd to March 5th.",
        reference_date=date(2026, 3, 1),
        client_request_id="e2e-duplicate",
    )
    async with await SkiffClient.connect(running_stack.nats_url) as client:
        first = await client.submit(request)
        second = await client.submit(request)
        events = [e async for e in client.events(first.trip_id, timeout_s=300)]
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
    async with await SkiffClient.connect(running_stack.nats_url) as client:
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


@pytest.mark.parametrize("text", ["", "x" * 5000])
async def test_empty_and_oversized_requests_get_a_typed_rejection(
    running_stack: stack.Stack, text: str
) -> None:
    request = TripRequest.model_construct(text=text, reference_date=date(2026, 3, 1))
    async with await SkiffClient.connect(running_stack.nats_url) as client:
        with pytest.raises(SubmitError) as rejected:
            await client.submit(request)
    assert rejected.value.rejected.errors[0].field == "text"


async def test_malformed_json_gets_a_typed_rejection(running_stack: stack.Stack) -> None:
    async with await SkiffClient.connect(running_stack.nats_url) as client:
        reply = await client.connection.request(subjects.TRIP_SUBMIT, b"{nope", timeout=10)
    assert b'"kind":"submit_rejected"' in reply.data


def test_services_log_json_lines(running_stack: stack.Stack) -> None:
    log = Path(running_stack.home / "planner.log").read_text()
    assert '"service": "planner"' in log or '"service":"planner"' in log
