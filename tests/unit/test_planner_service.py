"""The saga through the planner's real composition, with in-memory ports and a hand-set clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from skiff_contracts.domains import (
    CarsRequest,
    Domain,
    FlightsRequest,
    HotelsRequest,
    InsuranceRequest,
)
from skiff_contracts.events import (
    EventBase,
    StepChanged,
    TripFinished,
    TripNeedsInput,
    TripPlanned,
)
from skiff_contracts.inventory import InsuranceOffer
from skiff_contracts.messages import (
    Cancelled,
    CancelTask,
    Clarify,
    Confirmed,
    ConfirmTask,
    Extracted,
    ExtractTask,
    Failed,
    Held,
    HoldTask,
    ModelCall,
    NeedsEscalation,
    ResolveTask,
    SubmitConflict,
    TripAccepted,
    TripAnswer,
    TripCancel,
    TripRequest,
)
from skiff_contracts.problems import Problem
from skiff_contracts.registry import TaskAliases
from skiff_extraction.router import Route
from skiff_planner.routing import assign
from skiff_planner.service import Planner
from skiff_planner.transitions import EscalationRule, Policy
from skiff_runtime.metrics import Metrics
from tests.fakes.planner import (
    OWNER,
    FixedRouter,
    MemoryBus,
    MemoryRegistry,
    MemorySagaStore,
    card,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(
    extract_timeout=timedelta(seconds=30),
    booking_timeout=timedelta(seconds=10),
    input_timeout=timedelta(minutes=10),
    hold_margin=timedelta(seconds=30),
)
PARAMS = {
    "flights": FlightsRequest(
        origin="Boston", origin_iata="BOS", destination="Denver", destination_iata="DEN",
        departure_date=date(2026, 3, 12), return_date=date(2026, 3, 16), passengers=2,
    ),
    "hotels": HotelsRequest(location="Denver", location_iata="DEN"),
    "cars": CarsRequest(car_type="compact"),
    "insurance": InsuranceRequest(coverage="basic"),
}  # fmt: skip
# Without a flight to borrow dates and cities from, each part must say them itself.
STANDALONE = {
    **PARAMS,
    "hotels": HotelsRequest(location="Denver", check_in_date=date(2026, 3, 12), nights=4),
    "cars": CarsRequest(pickup_city="Denver", pickup_date=date(2026, 3, 12)),
}
PRICES: dict[Domain, float] = {"flights": 400.0, "hotels": 300.0, "cars": 100.0, "insurance": 40.0}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Trip:
    """A planner with fakes around it, and helpers that play the workers' part."""

    def __init__(self, *domains: Domain, unsupported: tuple[str, ...] = ()) -> None:
        self.store, self.bus, self.clock = MemorySagaStore(), MemoryBus(), Clock()
        router = FixedRouter(Route(tuple(domains), unsupported))
        self.registry = MemoryRegistry()
        self.planner = Planner(
            self.store, self.bus, router, self.registry, policy=POLICY, clock=self.clock
        )
        self.trip_id = ""
        self.params = PARAMS if "flights" in domains else STANDALONE

    async def submit(self, client_request_id: str = "c1") -> None:
        request = TripRequest(
            text="a trip", reference_date=date(2026, 3, 1), client_request_id=client_request_id
        )
        self.trip_id = (await self.planner.submit(request, OWNER)).trip_id

    @property
    def record(self):  # type: ignore[no-untyped-def]
        return self.store.records[self.trip_id][0]

    def sent(self, cls: type) -> list:  # type: ignore[type-arg]
        return [i for i in self.bus.published if isinstance(i, cls)]

    def last(self, cls: type):  # type: ignore[no-untyped-def]
        return self.sent(cls)[-1]

    async def extract_all(self, **overrides: object) -> None:
        for task in self.sent(ExtractTask):
            params = overrides.get(task.domain, self.params[task.domain])
            await self.planner.on_result(
                Extracted(
                    trip_id=self.trip_id,
                    step=task.step,
                    command_id=task.message_id,
                    domain=task.domain,
                    params=params,
                )
            )

    async def hold(self, task: HoldTask, *, expires_in: float = 900) -> None:
        offer = InsuranceOffer(
            offer_id=f"offer-{task.domain}", coverage="basic", travelers=1,
            trip_start=date(2026, 3, 12), trip_end=date(2026, 3, 16), trip_cost=0,
            medical_limit=1, cancellation_limit=1, premium=PRICES[task.domain],
            total_price=PRICES[task.domain],
        )  # fmt: skip
        await self.planner.on_result(
            Held(
                trip_id=self.trip_id,
                step=task.step,
                command_id=task.message_id,
                domain=task.domain,
                offer=offer,
                hold_id=f"hold-{task.hold_key}",
                hold_key=task.hold_key,
                expires_at=self.clock.now + timedelta(seconds=expires_in),
            )
        )

    async def confirm(self, task: ConfirmTask) -> None:
        await self.planner.on_result(
            Confirmed(
                trip_id=self.trip_id,
                step=task.step,
                command_id=task.message_id,
                domain=task.domain,
                hold_id=task.hold_id,
                confirmation_code=f"SK-{task.domain}",
                total_price=PRICES[task.domain],
                currency="USD",
            )
        )

    async def cancel(self, task: CancelTask) -> None:
        await self.planner.on_result(
            Cancelled(
                trip_id=self.trip_id,
                step=task.step,
                command_id=task.message_id,
                domain=task.domain,
                hold_key=task.hold_key,
            )
        )

    async def fail(self, task: HoldTask | ConfirmTask, reason: str, retryable: bool) -> None:
        await self.planner.on_result(
            Failed(
                trip_id=self.trip_id,
                step=task.step,
                command_id=task.message_id,
                domain=task.domain,
                reason=reason,
                retryable=retryable,
            )
        )

    def finished(self) -> TripFinished:
        event = self.last(TripFinished)
        assert isinstance(event, TripFinished)
        return event


async def book_until_confirming(trip: Trip) -> None:
    await trip.submit()
    await trip.extract_all()
    for task in trip.sent(HoldTask):
        await trip.hold(task)
    insurance = trip.last(HoldTask)
    if insurance.domain == "insurance":
        await trip.hold(insurance)


async def test_a_four_domain_trip_is_extracted_held_confirmed_and_completed() -> None:
    trip = Trip("flights", "hotels", "cars", "insurance")
    await trip.submit()
    assert [t.domain for t in trip.sent(ExtractTask)] == ["flights", "hotels", "cars", "insurance"]
    await trip.extract_all()
    first_holds = trip.sent(HoldTask)
    assert [t.domain for t in first_holds] == ["flights", "hotels", "cars"]  # insurance waits
    assert trip.record.compensations == tuple(t.hold_key for t in first_holds)  # before sending
    hotel = first_holds[1].params
    assert isinstance(hotel, HotelsRequest)
    assert (hotel.check_in_date, hotel.check_out_date) == (date(2026, 3, 12), date(2026, 3, 16))
    for task in first_holds:
        await trip.hold(task)
    insurance = trip.last(HoldTask)
    assert insurance.domain == "insurance"
    assert isinstance(insurance.params, InsuranceRequest)
    assert insurance.params.trip_cost == 800.0  # priced on what is held
    assert insurance.params.travelers == 2 and insurance.params.trip_start == date(2026, 3, 12)
    await trip.hold(insurance)
    assert trip.record.state == "confirming"
    confirms = trip.sent(ConfirmTask)
    assert len(confirms) == 4
    for task in confirms:
        await trip.confirm(task)
    finished = trip.finished()
    assert finished.state == "completed"
    assert finished.total_price == 840.0
    assert {b.domain: b.confirmation_code for b in finished.bookings} == {
        d: f"SK-{d}" for d in ("flights", "hotels", "cars", "insurance")
    }
    assert [e.seq for e in trip.bus.published if hasattr(e, "seq")] == list(
        range(1, trip.record.event_seq + 1)
    )


async def test_a_policy_without_dates_takes_the_rental_car_s_dates() -> None:
    trip = Trip("cars", "insurance")
    trip.params = {**STANDALONE, "cars": CarsRequest(
        pickup_city="Denver", pickup_date=date(2026, 3, 12), dropoff_date=date(2026, 3, 15),
    )}  # fmt: skip
    await trip.submit()
    await trip.extract_all()
    await trip.hold(trip.last(HoldTask))
    insurance = trip.last(HoldTask).params
    assert isinstance(insurance, InsuranceRequest)
    assert (insurance.trip_start, insurance.trip_end) == (date(2026, 3, 12), date(2026, 3, 15))


async def test_a_sold_out_hold_releases_every_other_hold_newest_first() -> None:
    trip = Trip("flights", "hotels", "cars")
    await trip.submit()
    await trip.extract_all()
    flights, hotels, cars = trip.sent(HoldTask)
    await trip.hold(flights)
    await trip.hold(cars)
    await trip.fail(hotels, "sold_out", retryable=False)
    assert trip.record.state == "compensating"
    released = []
    while trip.record.state == "compensating":
        cancel = trip.last(CancelTask)
        assert cancel.hold_key not in released, "one release at a time"
        released.append(cancel.hold_key)
        await trip.cancel(cancel)
    assert released == [cars.hold_key, hotels.hold_key, flights.hold_key]
    finished = trip.finished()
    assert finished.state == "compensated" and "sold_out" in (finished.reason or "")
    assert trip.sent(ConfirmTask) == []


async def test_a_transient_hold_failure_is_retried_with_the_same_key() -> None:
    trip = Trip("hotels")
    await trip.submit()
    await trip.extract_all()
    (hold,) = trip.sent(HoldTask)
    await trip.fail(hold, "unavailable", retryable=True)
    assert await trip.planner.sweep() == 0  # not due yet
    trip.clock.now += timedelta(seconds=1)
    assert await trip.planner.sweep() == 1
    again = trip.last(HoldTask)
    assert again.hold_key == hold.hold_key and again.message_id != hold.message_id
    assert trip.record.compensations == (hold.hold_key,)


async def test_a_lost_reply_is_asked_again_after_the_deadline() -> None:
    trip = Trip("cars")
    await trip.submit()
    await trip.extract_all()
    (hold,) = trip.sent(HoldTask)
    trip.clock.now += timedelta(seconds=11)
    await trip.planner.sweep()
    assert trip.last(HoldTask).hold_key == hold.hold_key
    await trip.hold(trip.last(HoldTask))
    assert trip.record.state == "confirming"


async def test_a_missing_value_becomes_a_question_and_the_answer_resumes_the_trip() -> None:
    trip = Trip("flights")
    await trip.submit()
    await trip.extract_all(
        flights=FlightsRequest(destination="Denver", departure_date=date(2026, 3, 12))
    )
    asked = trip.last(TripNeedsInput)
    assert trip.record.state == "needs_input"
    assert "where you fly from" in asked.question
    await trip.planner.on_user(TripAnswer(trip_id=trip.trip_id, text="From Boston."), OWNER)
    again = trip.last(ExtractTask)
    assert again.text == "a trip From Boston." and trip.record.state == "extracting"
    await trip.extract_all()
    assert trip.record.state == "holding"


async def test_only_the_domain_the_answer_settled_counts_as_handled_by_the_user() -> None:
    trip = Trip("flights", "hotels")
    await trip.submit()
    call = ModelCall(tier="slm", engine="llamacpp", model="small", version="1", tokens_in=500,
                     tokens_out=70, cost_usd=0.00001)  # fmt: skip
    flights, hotels = trip.sent(ExtractTask)
    partial = FlightsRequest(destination="Denver", departure_date=date(2026, 3, 12))
    for task, params in ((flights, partial), (hotels, PARAMS["hotels"])):
        await trip.planner.on_result(
            Extracted(
                trip_id=trip.trip_id,
                step=task.step,
                command_id=task.message_id,
                domain=task.domain,
                params=params,
                call=call,
            )
        )
    assert trip.record.state == "needs_input"
    await trip.planner.on_user(TripAnswer(trip_id=trip.trip_id, text="From Boston."), OWNER)
    (again,) = trip.sent(ExtractTask)[2:]  # only the flight is asked again
    await trip.planner.on_result(
        Extracted(
            trip_id=trip.trip_id,
            step=again.step,
            command_id=again.message_id,
            domain="flights",
            params=PARAMS["flights"],
            call=call,
        )
    )
    for task in trip.sent(HoldTask):
        await trip.hold(task)
    for task in trip.sent(ConfirmTask):
        await trip.confirm(task)
    finished = trip.finished()
    assert finished.state == "completed" and finished.accounting is not None
    assert finished.accounting.handled_by == {"flights": "user", "hotels": "slm"}
    assert {i.domain: i.handled_by for i in finished.itinerary} == finished.accounting.handled_by


async def test_an_unanswered_question_expires_the_trip() -> None:
    trip = Trip("flights")
    await trip.submit()
    await trip.extract_all(flights=FlightsRequest(destination="Denver"))
    trip.clock.now += timedelta(minutes=11)
    await trip.planner.sweep()
    finished = trip.finished()
    assert finished.state == "failed" and "expired" in (finished.reason or "")


def escalation(trip: Trip, task: ExtractTask, reason: str = "ungrounded") -> NeedsEscalation:
    return NeedsEscalation(
        trip_id=trip.trip_id,
        step=task.step,
        command_id=task.message_id,
        domain=task.domain,
        reason=reason,  # type: ignore[arg-type]
        attempt={"origin": "Atlantis"},
        errors=(Problem(code="unknown_city", message="no city called Atlantis"),),
        call=ModelCall(
            tier="slm",
            engine="llamacpp",
            model="smol",
            version="1",
            tokens_in=300,
            tokens_out=40,
            cost_usd=0.00001,
        ),
    )


async def test_an_slm_failure_goes_to_the_llm_tier_with_the_attempt_and_the_trips_knowledge() -> (
    None
):
    trip = Trip("flights", "hotels")
    await trip.submit()
    flights, hotels = trip.sent(ExtractTask)
    await trip.planner.on_result(
        Extracted(
            trip_id=trip.trip_id,
            step=flights.step,
            command_id=flights.message_id,
            domain="flights",
            params=PARAMS["flights"],
        )
    )
    await trip.planner.on_result(escalation(trip, hotels))
    (resolve,) = trip.sent(ResolveTask)
    assert (resolve.domain, resolve.reason) == ("hotels", "ungrounded")
    assert resolve.attempt == {"origin": "Atlantis"}
    step = trip.record.steps[resolve.step]
    assert step.deadline is not None and step.dispatched_at is not None
    assert step.deadline - step.dispatched_at == trip.planner.policy.resolve_timeout
    assert resolve.known["flights"] == PARAMS["flights"]  # "a hotel there" can be settled
    llm_call = ModelCall(tier="llm", engine="openai", model="big", version="1", tokens_in=900,
                         tokens_out=60, cost_usd=0.0004, calls=2)  # fmt: skip
    await trip.planner.on_result(
        Extracted(
            trip_id=trip.trip_id,
            step=resolve.step,
            command_id=resolve.message_id,
            domain="hotels",
            params=PARAMS["hotels"],
            call=llm_call,
        )
    )
    assert trip.record.state == "holding"
    for task in trip.sent(HoldTask):
        await trip.hold(task)
    for task in trip.sent(ConfirmTask):
        await trip.confirm(task)
    finished = trip.finished()
    assert finished.state == "completed"
    accounting = finished.accounting
    assert accounting is not None
    assert (accounting.slm.calls, accounting.llm.calls) == (1, 2)
    assert accounting.handled_by == {"hotels": "llm"}
    assert accounting.escalations == {"ungrounded": 1}
    assert accounting.all_llm_cost_usd == pytest.approx((1200 * 0.4 + 100 * 0.4) / 1e6)
    assert {i.domain: i.handled_by for i in finished.itinerary}["hotels"] == "llm"


async def test_when_the_llm_tier_asks_the_user_gets_its_question() -> None:
    trip = Trip("hotels")
    await trip.submit()
    (task,) = trip.sent(ExtractTask)
    await trip.planner.on_result(escalation(trip, task, "ambiguous"))
    resolve = trip.last(ResolveTask)
    await trip.planner.on_result(
        Clarify(
            trip_id=trip.trip_id,
            step=resolve.step,
            command_id=resolve.message_id,
            domain="hotels",
            question="Which Springfield do you mean: Springfield, IL or Springfield, MO?",
        )
    )
    assert trip.record.state == "needs_input"
    assert "Which Springfield" in trip.last(TripNeedsInput).question
    await trip.planner.on_user(TripAnswer(trip_id=trip.trip_id, text="Springfield, IL"), OWNER)
    assert trip.last(ExtractTask).text.endswith("Springfield, IL")


async def test_the_kill_switch_fails_the_step_cleanly_instead_of_calling_the_llm() -> None:
    trip = Trip("flights")
    trip.planner.policy = Policy(escalation={"flights": EscalationRule(enabled=False)})
    await trip.submit()
    (task,) = trip.sent(ExtractTask)
    await trip.planner.on_result(escalation(trip, task))
    assert trip.sent(ResolveTask) == []
    finished = trip.finished()
    assert finished.state == "failed" and "escalation is off" in (finished.reason or "")


async def test_reasons_outside_the_triggers_and_spent_budgets_go_to_the_user() -> None:
    trip = Trip("flights", "hotels")
    trip.planner.policy = Policy(
        escalation={"flights": EscalationRule(triggers=frozenset({"timeout"}))},
        max_escalations_per_trip=0,
    )
    await trip.submit()
    for task in trip.sent(ExtractTask):
        await trip.planner.on_result(escalation(trip, task))
    assert trip.sent(ResolveTask) == []
    assert trip.record.state == "needs_input"
    assert "Atlantis" in trip.last(TripNeedsInput).question


async def test_work_no_micro_slm_covers_is_recorded_by_the_llm_tier() -> None:
    trip = Trip("flights", unsupported=("trains",))
    await trip.submit()
    (declined,) = trip.sent(ResolveTask)
    assert (declined.domain, declined.reason, declined.unsupported) == (None, "no_model",
                                                                       ("trains",))  # fmt: skip
    assert trip.record.state == "extracting"  # the flights go on


async def test_the_user_can_cancel_before_the_pivot_and_holds_are_released() -> None:
    trip = Trip("flights", "hotels")
    await trip.submit()
    await trip.extract_all()
    flights, hotels = trip.sent(HoldTask)
    await trip.hold(flights)  # the hotel hold is still in flight
    await trip.planner.on_user(TripCancel(trip_id=trip.trip_id), OWNER)
    keys = []
    while trip.record.state == "compensating":
        cancel = trip.last(CancelTask)
        keys.append(cancel.hold_key)
        await trip.cancel(cancel)
    assert keys == [hotels.hold_key, flights.hold_key]  # even the one with no reply yet
    assert trip.finished().state == "cancelled"
    await trip.hold(hotels)  # its late reply changes nothing
    assert trip.record.state == "cancelled"


async def test_a_cancellation_after_the_pivot_is_refused() -> None:
    trip = Trip("hotels")
    await book_until_confirming(trip)
    assert trip.record.state == "confirming"
    await trip.planner.on_user(TripCancel(trip_id=trip.trip_id), OWNER)
    assert trip.record.state == "confirming"


async def test_holds_about_to_lapse_are_held_again_before_the_pivot() -> None:
    trip = Trip("flights", "hotels")
    await trip.submit()
    await trip.extract_all()
    flights, hotels = trip.sent(HoldTask)
    await trip.hold(flights, expires_in=10)  # inside the 30 s margin
    await trip.hold(hotels)
    assert trip.record.state == "holding"
    rehold = trip.last(HoldTask)
    assert rehold.domain == "flights" and rehold.hold_key != flights.hold_key
    assert trip.record.compensations[-1] == rehold.hold_key
    await trip.hold(rehold)
    confirm = [t for t in trip.sent(ConfirmTask) if t.domain == "flights"]
    assert [t.hold_id for t in confirm] == [f"hold-{rehold.hold_key}"]  # never the stale one


async def test_a_hold_that_expired_under_its_confirmation_is_held_again_then_confirmed() -> None:
    trip = Trip("hotels")
    await book_until_confirming(trip)
    (confirm,) = trip.sent(ConfirmTask)
    await trip.fail(confirm, "hold_expired", retryable=False)
    rehold = trip.last(HoldTask)
    await trip.hold(rehold)
    second = trip.last(ConfirmTask)
    assert second.hold_id == f"hold-{rehold.hold_key}" != confirm.hold_id
    await trip.confirm(second)
    assert trip.finished().state == "completed"


async def test_confirmations_are_retried_until_they_succeed() -> None:
    trip = Trip("cars")
    await book_until_confirming(trip)
    for _ in range(5):
        await trip.fail(trip.last(ConfirmTask), "unavailable", retryable=True)
        trip.clock.now += timedelta(seconds=31)
        await trip.planner.sweep()
    await trip.confirm(trip.last(ConfirmTask))
    assert trip.finished().state == "completed"
    assert len(trip.sent(ConfirmTask)) == 6


async def test_same_client_request_id_is_one_trip() -> None:
    trip = Trip("flights")
    await trip.submit()
    first = trip.trip_id
    await trip.submit()
    assert trip.trip_id == first and len(trip.store.records) == 1
    assert len(trip.sent(ExtractTask)) == 1


async def test_duplicate_late_and_stray_replies_change_nothing() -> None:
    trip = Trip("flights", "hotels")
    await trip.submit()
    task = trip.sent(ExtractTask)[0]
    reply = Extracted(
        trip_id=trip.trip_id,
        step=task.step,
        command_id=task.message_id,
        domain="flights",
        params=PARAMS["flights"],
    )
    await trip.planner.on_result(reply)
    count = len(trip.bus.published)
    await trip.planner.on_result(reply)
    await trip.planner.on_result(reply.model_copy(update={"step": "flights.confirm"}))
    assert len(trip.bus.published) == count


async def test_a_part_no_tier_answers_ends_the_trip_with_a_typed_reason_not_a_question() -> None:
    """The hotels worker is gone: its extraction times out and goes to the LLM tier, which is
    silent too. The trip ends `unavailable`, naming the part; the flight is not booked."""
    trip = Trip("flights", "hotels")
    await trip.submit()
    flights, hotels = trip.sent(ExtractTask)
    await trip.planner.on_result(
        Extracted(trip_id=trip.trip_id, step=flights.step, command_id=flights.message_id,
                  domain="flights", params=PARAMS["flights"])
    )  # fmt: skip
    trip.clock.now += POLICY.extract_timeout + timedelta(seconds=1)
    await trip.planner.sweep()
    resolve = trip.last(ResolveTask)
    assert (resolve.domain, resolve.reason) == ("hotels", "timeout")
    trip.clock.now += POLICY.resolve_timeout + timedelta(seconds=1)
    await trip.planner.sweep()
    finished = trip.finished()
    assert finished.state == "failed" and finished.reason is not None
    assert finished.reason.startswith("unavailable: hotels")
    assert [(e.code, e.field) for e in finished.errors] == [("unavailable", "hotels")]
    assert not trip.sent(TripNeedsInput) and not trip.sent(HoldTask)
    assert hotels.step in trip.record.steps


def refused(trip: Trip, kind: str) -> float:
    return (
        trip.planner.metrics.registry.get_sample_value("skiff_refused_total", {"kind": kind}) or 0.0
    )


async def test_a_forged_reply_for_a_waiting_step_is_dropped_and_counted() -> None:
    trip = Trip("flights")
    trip.planner.metrics = Metrics()
    await trip.submit()
    task = trip.sent(ExtractTask)[0]
    assert trip.record.steps[task.step].command_id == task.message_id
    forged = Extracted(
        trip_id=trip.trip_id, step=task.step, domain="flights", params=PARAMS["flights"],
        command_id=f"{task.message_id}-forged",
    )  # fmt: skip
    unnamed = forged.model_copy(update={"command_id": None})
    count = len(trip.bus.published)
    await trip.planner.on_result(forged)
    await trip.planner.on_result(unnamed)
    assert trip.record.steps[task.step].status == "dispatched"  # still waiting for its own
    assert len(trip.bus.published) == count
    assert refused(trip, "foreign_reply") == 2
    await trip.planner.on_result(forged.model_copy(update={"command_id": task.message_id}))
    assert trip.record.steps[task.step].status == "succeeded"


async def test_a_reply_to_an_extraction_sent_before_the_users_answer_is_dropped() -> None:
    """The extraction is sent again with the user's answer; a late reply to the first one
    (read on the text without the answer) must not settle the step."""
    trip = Trip("flights")
    await trip.submit()
    (first,) = trip.sent(ExtractTask)
    partial = FlightsRequest(destination="Denver", departure_date=date(2026, 3, 12))
    await trip.extract_all(flights=partial)
    await trip.planner.on_user(TripAnswer(trip_id=trip.trip_id, text="From Boston."), OWNER)
    second = trip.last(ExtractTask)
    assert second.message_id != first.message_id and "From Boston" in second.text
    late = Extracted(trip_id=trip.trip_id, step=first.step, command_id=first.message_id,
                     domain="flights", params=PARAMS["flights"])  # fmt: skip
    await trip.planner.on_result(late)
    assert trip.record.steps[first.step].status == "dispatched"
    await trip.planner.on_result(late.model_copy(update={"command_id": second.message_id}))
    assert trip.record.state == "holding"


async def test_a_late_reply_to_an_earlier_hold_attempt_answers_the_same_hold() -> None:
    """A hold sent again (no reply in time) is the same request, idempotent by its key: the
    first attempt's late reply is as good as the second's, so retries cannot starve a step."""
    trip = Trip("cars")
    await trip.submit()
    await trip.extract_all()
    (first,) = trip.sent(HoldTask)
    trip.clock.now += timedelta(seconds=11)
    await trip.planner.sweep()  # no reply in time: the hold is sent again, as attempt 2
    second = trip.last(HoldTask)
    assert second.message_id != first.message_id and second.hold_key == first.hold_key
    await trip.hold(first)
    assert trip.record.state == "confirming"


async def test_a_request_id_reused_with_another_text_or_by_another_owner_is_a_conflict() -> None:
    trip = Trip("flights")
    await trip.submit()
    request = trip.record.request
    again = await trip.planner.submit(request, OWNER)
    assert isinstance(again, TripAccepted) and again.duplicate
    other_text = request.model_copy(update={"text": "a different trip"})
    conflict = await trip.planner.submit(other_text, OWNER)
    assert isinstance(conflict, SubmitConflict) and conflict.trip_id == trip.trip_id
    taken = await trip.planner.submit(request, "mobile")
    assert isinstance(taken, SubmitConflict)
    assert trip.record.request.text == "a trip" and trip.record.owner == OWNER
    assert len(trip.store.records) == 1 and len(trip.sent(ExtractTask)) == 1


async def test_another_owner_can_neither_cancel_answer_nor_read_the_trip() -> None:
    trip = Trip("flights", "hotels")
    trip.planner.metrics = Metrics()
    await trip.submit()
    before = trip.record
    await trip.planner.on_user(TripCancel(trip_id=trip.trip_id), "mobile")
    await trip.planner.on_user(TripAnswer(trip_id=trip.trip_id, text="To Oslo."), "mobile")
    assert trip.record == before
    assert refused(trip, "foreign_input") == 2
    assert await trip.planner.status(trip.trip_id, "mobile") is None
    assert await trip.planner.status(trip.trip_id, OWNER) == before
    await trip.planner.on_user(TripCancel(trip_id=trip.trip_id), OWNER)
    assert trip.record.state in ("cancelled", "compensating")


async def test_a_trip_s_events_go_out_under_its_owner() -> None:
    trip = Trip("flights")
    await trip.submit()
    await trip.extract_all()
    events = [o for i, o in zip(trip.bus.published, trip.bus.owners, strict=True)
              if isinstance(i, EventBase)]  # fmt: skip
    assert events and set(events) == {OWNER}


async def test_a_crash_before_publishing_leaves_an_outbox_the_sweeper_sends() -> None:
    trip = Trip("flights")
    trip.bus.fail_after = 0
    with pytest.raises(ConnectionError):
        await trip.submit()
    ((record, _),) = trip.store.records.values()
    assert len(record.outbox) == 5  # the route's call record, received, planned, dispatched,
    # and the command
    trip.bus.fail_after = None
    trip.clock.now += timedelta(seconds=6)
    await trip.planner.sweep()
    assert len(trip.sent(ExtractTask)) == 1 and trip.store.records[record.trip_id][0].outbox == ()


async def test_nothing_bookable_fails_at_once() -> None:
    trip = Trip(unsupported=("trains",))
    await trip.submit()
    planned = trip.last(TripPlanned)
    assert planned.unsupported == ("trains",)
    finished = trip.finished()
    assert finished.state == "failed" and "trains" in (finished.reason or "")
    assert trip.sent(ExtractTask) == []


async def test_every_transition_is_announced_as_an_event() -> None:
    trip = Trip("cars")
    await book_until_confirming(trip)
    await trip.confirm(trip.last(ConfirmTask))
    changes = [(e.operation, e.status) for e in trip.sent(StepChanged)]
    assert changes == [
        ("extract", "dispatched"), ("extract", "succeeded"), ("hold", "dispatched"),
        ("hold", "succeeded"), ("confirm", "dispatched"), ("confirm", "succeeded"),
    ]  # fmt: skip


async def test_extraction_goes_to_the_champion_and_a_shadow_gets_a_mirror_never_used() -> None:
    trip = Trip("hotels")
    champion = card("hotels", status="champion")
    shadow = card("hotels", version="v2", status="shadow")
    trip.planner.registry = MemoryRegistry(champion, shadow)
    await trip.submit()
    real, mirror = trip.sent(ExtractTask)
    assert (real.model_id, real.shadow) == (champion.model_id, False)
    assert (mirror.model_id, mirror.shadow) == (shadow.model_id, True)
    assert mirror.step != real.step
    await trip.planner.on_result(
        Extracted(
            trip_id=trip.trip_id,
            step=mirror.step,
            command_id=mirror.message_id,
            domain="hotels",
            params=HotelsRequest(location="Paris", check_in_date=date(2026, 3, 4)),
        )
    )
    assert trip.record.state == "extracting"  # the shadow's answer changed nothing
    await trip.extract_all()
    (hold,) = trip.sent(HoldTask)
    assert isinstance(hold.params, HotelsRequest) and hold.params.location == "Denver"


async def test_no_champion_sends_the_domain_to_the_llm_tier_as_no_model() -> None:
    trip = Trip("cars")
    trip.planner.registry = MemoryRegistry(card("cars", status="candidate"))
    await trip.submit()
    assert trip.sent(ExtractTask) == []
    (resolve,) = trip.sent(ResolveTask)
    assert (resolve.domain, resolve.reason) == ("cars", "no_model")


def test_a_canary_takes_its_share_of_trips_within_tolerance() -> None:
    champion = card("flights", status="champion")
    canary = card("flights", version="v2", status="canary", canary_share=0.2)
    snapshot = MemoryRegistry(champion, canary).snapshot()
    picks = [assign(snapshot, f"trip-{i}", "flights").model_id for i in range(2000)]
    share = picks.count(canary.model_id) / len(picks)
    assert 0.17 < share < 0.23, share
    assert set(picks) == {champion.model_id, canary.model_id}
    again = [assign(snapshot, f"trip-{i}", "flights").model_id for i in range(2000)]
    assert again == picks  # a replayed decision is the same decision


def test_a_retired_champion_gets_no_work() -> None:
    retired = card("flights", status="retired")
    registry = MemoryRegistry(retired)
    registry.aliases = {"flights.extract": TaskAliases(task="flights.extract",
                                                       champion=retired.model_id)}  # fmt: skip
    assert assign(registry.snapshot(), "trip-1", "flights").model_id is None
