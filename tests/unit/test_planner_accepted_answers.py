"""The accepted answer of each domain (S1's label) through the planner's real composition:
who gave it, what it names, and that a crash between accepting and publishing it neither
loses nor doubles it (the saga's outbox, re-published by the sweeper, de-duplicated by id)."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

from skiff_contracts.domains import FlightsRequest
from skiff_contracts.messages import (
    Extracted,
    ExtractTask,
    HoldTask,
    ModelCall,
    ResolveTask,
    TripAnswer,
    TripCancel,
)
from skiff_contracts.registry import AnswerAccepted, model_id_for
from skiff_contracts.saga import Outgoing
from skiff_flywheel.call_records import params_digest
from skiff_planner.service import Planner
from tests.fakes.planner import OWNER, MemoryBus
from tests.unit.test_planner_service import PARAMS, POLICY, Trip, escalation

SLM = ModelCall(tier="slm", engine="llamacpp", model="smol", version="v1", tokens_in=300,
                tokens_out=40)  # fmt: skip
LLM = ModelCall(tier="llm", engine="openai", model="big", version="1", tokens_in=900,
                tokens_out=60, calls=2)  # fmt: skip
NO_ORIGIN = FlightsRequest(destination="Denver", destination_iata="DEN",
                           departure_date=date(2026, 3, 12))  # fmt: skip
CONTEXT = "a trip The trip's flight goes to Denver."


def extracted(trip: Trip, task: ExtractTask | ResolveTask, params: object, **extra: object):  # type: ignore[no-untyped-def]
    assert task.domain is not None
    return Extracted(
        trip_id=trip.trip_id,
        step=task.step,
        command_id=task.message_id,
        domain=task.domain,
        params=params,  # type: ignore[arg-type]
        call=SLM,
        draft={"written": task.domain},
        **extra,  # type: ignore[arg-type]
    )


async def three_ways(trip: Trip) -> None:
    """cars: the SLM; hotels: the LLM tier; flights: read again after the user's answer."""
    await trip.submit()
    flights, hotels, cars = trip.sent(ExtractTask)
    await trip.planner.on_result(extracted(trip, cars, PARAMS["cars"]))
    await trip.planner.on_result(extracted(trip, flights, NO_ORIGIN))
    await trip.planner.on_result(escalation(trip, hotels))
    (resolve,) = trip.sent(ResolveTask)
    await trip.planner.on_result(
        extracted(trip, resolve, PARAMS["hotels"], text=CONTEXT).model_copy(update={"call": LLM})
    )
    assert trip.record.state == "needs_input"  # the flight's origin is missing
    assert trip.sent(AnswerAccepted) == []  # nothing is accepted while the trip still asks
    await trip.planner.on_user(TripAnswer(trip_id=trip.trip_id, text="From Boston."), OWNER)
    for task in trip.sent(ExtractTask)[3:]:  # flights (and hotels' SLM step) read again
        params = PARAMS[task.domain]
        await trip.planner.on_result(extracted(trip, task, params))


async def test_each_domain_s_accepted_answer_is_logged_once_naming_who_gave_it() -> None:
    trip = Trip("flights", "hotels", "cars")
    await three_ways(trip)
    assert trip.record.state == "holding"
    answers = {a.task: a for a in trip.sent(AnswerAccepted)}
    assert len(trip.sent(AnswerAccepted)) == 3
    tid = trip.trip_id

    flights = answers["flights.extract"]
    assert (flights.record_id, flights.step) == (f"{tid}:flights:accepted", "flights.extract")
    assert flights.answered_by == "user"
    assert flights.input_text == "a trip From Boston."  # what the accepted reading read
    assert flights.call_record_id == f"{tid}:flights.extract:2:call"  # the second attempt's
    assert flights.model_id == model_id_for("flights.extract", "smol", "v1")  # the routed card
    assert flights.draft == {"written": "flights"}
    assert flights.params["origin"] == "Boston"
    assert flights.output_digest == params_digest(PARAMS["flights"])

    hotels = answers["hotels.extract"]
    assert (hotels.answered_by, hotels.step, hotels.model_id) == ("llm", "hotels.resolve",
                                                                  "llm/big@1")  # fmt: skip
    assert hotels.input_text == CONTEXT  # with what the other steps knew, as the tier read it
    assert hotels.call_record_id == f"{tid}:hotels.resolve:1:call.1"  # the second candidate

    cars = answers["cars.extract"]
    assert (cars.answered_by, cars.input_text) == ("slm", "a trip")
    assert cars.call_record_id == f"{tid}:cars.extract:1:call"

    published = trip.bus.published
    first_hold = next(i for i, item in enumerate(published) if isinstance(item, HoldTask))
    assert all(published.index(a) < first_hold for a in answers.values())
    assert trip.record.outbox == ()


async def test_no_answer_is_accepted_when_the_trip_ends_before_holding() -> None:
    trip = Trip("flights")
    await trip.submit()
    (flights,) = trip.sent(ExtractTask)
    await trip.planner.on_result(extracted(trip, flights, NO_ORIGIN))
    await trip.planner.on_user(TripCancel(trip_id=trip.trip_id), OWNER)
    assert trip.record.terminal
    assert trip.sent(AnswerAccepted) == []


class CrashingBus(MemoryBus):
    """Dies once at the first accepted answer: before publishing it, or right after."""

    def __init__(self, *, after: bool) -> None:
        super().__init__()
        self.after = after
        self.crashed = False

    async def publish(self, item: Outgoing, owner: str = "") -> None:
        crash = isinstance(item, AnswerAccepted) and not self.crashed
        if crash and not self.after:
            self.crashed = True
            raise ConnectionError("the planner died before publishing")
        await super().publish(item, owner)
        if crash:
            self.crashed = True
            raise ConnectionError("the planner died before clearing its outbox")


async def crash_and_restart(after: bool) -> Trip:
    trip = Trip("flights", "hotels", "cars")
    trip.bus = CrashingBus(after=after)
    trip.planner.bus = trip.bus
    with contextlib.suppress(ConnectionError):  # the crash
        await three_ways(trip)
    assert trip.bus.crashed
    stored = trip.record
    assert stored.state == "holding"  # the decision is stored before anything goes out
    assert sum(isinstance(item, AnswerAccepted) for item in stored.outbox) == 3
    # A new planner process: its sweeper finds the outbox left behind and publishes it.
    restarted = Planner(trip.store, trip.bus, trip.planner.versions.fallback[1], trip.registry,
                        policy=POLICY, clock=trip.clock)  # fmt: skip
    trip.planner = restarted
    trip.clock.now += timedelta(seconds=6)
    assert await restarted.sweep() == 1
    assert trip.record.outbox == ()
    return trip


async def test_a_crash_before_the_accepted_answer_is_published_does_not_lose_it() -> None:
    trip = await crash_and_restart(after=False)
    answers = trip.sent(AnswerAccepted)
    assert sorted(a.task for a in answers) == ["cars.extract", "flights.extract", "hotels.extract"]
    assert len(trip.sent(HoldTask)) == 3  # and the trip goes on


async def test_a_crash_after_it_was_published_does_not_double_it() -> None:
    trip = await crash_and_restart(after=True)
    answers = trip.sent(AnswerAccepted)
    assert len(answers) == 3 and len({a.record_id for a in answers}) == 3
    assert len(trip.sent(HoldTask)) == 3
