"""The planner's logic through its real composition, with in-memory ports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from skiff_contracts.domains import FlightsRequest, HotelsRequest
from skiff_contracts.events import StepChanged, TripFinished, TripPlanned, TripReceived
from skiff_contracts.messages import Extracted, ExtractTask, NeedsEscalation, TripRequest
from skiff_contracts.problems import Problem
from skiff_extraction.router import Route
from skiff_planner.service import Planner
from skiff_planner.transitions import Policy
from tests.fakes.planner import FixedRouter, MemoryBus, MemorySagaStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def make(route: Route) -> tuple[Planner, MemorySagaStore, MemoryBus, Clock]:
    store, bus, clock = MemorySagaStore(), MemoryBus(), Clock()
    planner = Planner(
        store, bus, FixedRouter(route), policy=Policy(timedelta(seconds=30)), clock=clock
    )
    return planner, store, bus, clock


def request() -> TripRequest:
    return TripRequest(text="fly and stay", reference_date=date(2026, 3, 1), client_request_id="c1")


def events(bus: MemoryBus) -> list[object]:
    return [i for i in bus.published if not isinstance(i, ExtractTask)]


def tasks(bus: MemoryBus) -> list[ExtractTask]:
    return [i for i in bus.published if isinstance(i, ExtractTask)]


def extracted(trip_id: str, params: FlightsRequest | HotelsRequest) -> Extracted:
    return Extracted(
        trip_id=trip_id, step=f"{params.domain}.extract", domain=params.domain, params=params
    )


async def test_submit_dispatches_one_task_per_domain_and_emits_ordered_events() -> None:
    planner, store, bus, _ = make(Route(("flights", "hotels")))
    accepted = await planner.submit(request())
    assert not accepted.duplicate
    assert [t.domain for t in tasks(bus)] == ["flights", "hotels"]
    assert [type(e) for e in events(bus)] == [TripReceived, TripPlanned, StepChanged, StepChanged]
    assert [e.seq for e in events(bus)] == [1, 2, 3, 4]  # type: ignore[attr-defined]
    record, _ = store.records[accepted.trip_id]
    assert record.state == "extracting" and record.outbox == ()


async def test_same_client_request_id_is_one_trip() -> None:
    planner, store, bus, _ = make(Route(("flights",)))
    first = await planner.submit(request())
    second = await planner.submit(request())
    assert second.duplicate and second.trip_id == first.trip_id
    assert len(store.records) == 1 and len(tasks(bus)) == 1


async def test_all_steps_succeeding_completes_the_trip_with_an_itinerary() -> None:
    planner, store, bus, _ = make(Route(("flights", "hotels")))
    trip_id = (await planner.submit(request())).trip_id
    await planner.on_result(extracted(trip_id, FlightsRequest(origin="Boston")))
    await planner.on_result(extracted(trip_id, HotelsRequest(location="Denver")))
    finished = events(bus)[-1]
    assert isinstance(finished, TripFinished) and finished.state == "completed"
    assert {i.domain for i in finished.itinerary} == {"flights", "hotels"}
    assert store.records[trip_id][0].state == "completed"


async def test_duplicate_and_late_replies_change_nothing() -> None:
    planner, _, bus, _ = make(Route(("flights", "hotels")))
    trip_id = (await planner.submit(request())).trip_id
    reply = extracted(trip_id, FlightsRequest(origin="Boston"))
    await planner.on_result(reply)
    count = len(bus.published)
    await planner.on_result(reply)
    assert len(bus.published) == count


async def test_an_escalated_step_fails_the_trip_with_its_reason() -> None:
    planner, _, bus, _ = make(Route(("flights",)))
    trip_id = (await planner.submit(request())).trip_id
    await planner.on_result(
        NeedsEscalation(
            trip_id=trip_id,
            step="flights.extract",
            domain="flights",
            reason="ungrounded",
            errors=(Problem(code="unknown_city", message="no city called Atlantis"),),
        )
    )
    finished = events(bus)[-1]
    assert isinstance(finished, TripFinished) and finished.state == "failed"
    assert finished.reason == "flights: ungrounded"


async def test_sweeper_times_out_silent_steps() -> None:
    planner, _, bus, clock = make(Route(("flights",)))
    await planner.submit(request())
    assert await planner.sweep() == 0
    clock.now = NOW + timedelta(seconds=31)
    assert await planner.sweep() == 1
    step = [e for e in events(bus) if isinstance(e, StepChanged)][-1]
    assert step.status == "escalated" and step.reason == "timeout"
    assert isinstance(events(bus)[-1], TripFinished)


async def test_a_crash_before_publishing_leaves_an_outbox_the_sweeper_sends() -> None:
    planner, store, bus, clock = make(Route(("flights",)))
    bus.fail_after = 0
    with pytest.raises(ConnectionError):
        await planner.submit(request())
    ((record, _),) = store.records.values()
    assert len(record.outbox) == 4  # received, planned, dispatched, and the command
    bus.fail_after = None
    clock.now = NOW + timedelta(seconds=6)
    await planner.sweep()
    assert len(tasks(bus)) == 1 and len(events(bus)) == 3
    assert store.records[record.trip_id][0].outbox == ()


async def test_nothing_bookable_fails_at_once() -> None:
    planner, _, bus, _ = make(Route((), unsupported=("train",)))
    await planner.submit(request())
    finished = events(bus)[-1]
    assert isinstance(finished, TripFinished) and finished.state == "failed"
    assert "train" in (finished.reason or "")
    assert tasks(bus) == []
