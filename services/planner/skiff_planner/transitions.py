"""The saga as pure functions: (record, input, now) → the new record, its outbox filled.

No I/O here. Every input (a worker's reply, the user's answer or cancellation, the clock)
updates the steps it concerns, then `advance` works out what should happen next from the
steps alone — so re-running it after a crash decides the same thing again. The service
persists the record (compare-and-set) before anything in its outbox is published.

Order of business (DESIGN §4): extract every domain in parallel → ask the user for what is
missing → log the answer each domain goes on with (`AnswerAccepted`, the conversion loop's
label, through the outbox like everything else) → hold flights, hotels and cars in
parallel, then insurance priced on them → check every hold still has life left → confirm all
(the pivot) → completed. Before the pivot any failure releases every hold ever asked for,
newest first, one at a time, each retried until it succeeds. After the pivot, confirmations
are retried until they succeed; a hold that expired under a confirmation is held again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from skiff_contracts import subjects
from skiff_contracts.domains import BOOKABLE, DOMAINS, Domain, InsuranceRequest
from skiff_contracts.events import (
    Accounting,
    Booking,
    ItineraryItem,
    StepChanged,
    TierUsage,
    TripDeclined,
    TripFinished,
    TripNeedsInput,
    TripPlanned,
    TripReceived,
)
from skiff_contracts.inventory import Offer
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
    TripAnswer,
    TripCancel,
    TripRequest,
    WorkerReply,
)
from skiff_contracts.problems import ESCALATION_REASONS, EscalationReason, Problem
from skiff_contracts.registry import AnswerAccepted, CallRecord, model_id_for, slug_of
from skiff_contracts.saga import Outgoing, SagaRecord, StepRecord, step_name
from skiff_contracts.states import BEFORE_PIVOT, Operation, TripState
from skiff_extraction.router import Route
from skiff_flywheel.call_records import accepted_answer, call_record_id, tier_model_id
from skiff_planner.booking import (
    HOLD_FIRST,
    Request,
    complete,
    missing,
    question_for,
    with_trip_cost,
)
from skiff_planner.routing import Assignment

# Which commands may be (re)sent in which state: nothing is held again while undoing.
ACTIVE: dict[Operation, frozenset[TripState]] = {
    "extract": frozenset({"extracting"}),
    "resolve": frozenset({"extracting"}),
    "hold": frozenset({"holding", "confirming"}),
    "confirm": frozenset({"confirming"}),
    "cancel": frozenset({"compensating"}),
}
REPLY_KINDS: dict[Operation, tuple[type[Any], ...]] = {
    "extract": (Extracted, NeedsEscalation, Failed),
    "resolve": (Extracted, Clarify, NeedsEscalation, Failed),
    "hold": (Held, Failed),
    "confirm": (Confirmed, Failed),
    "cancel": (Cancelled, Failed),
}


class EscalationRule(BaseModel):
    """One domain's escalation policy (`SKIFF_ESCALATION='{"flights": {...}}'`).

    `enabled: false` is the kill switch: a step the SLM cannot settle then fails the trip
    cleanly instead of calling the LLM tier. Reasons outside `triggers` go to the user.
    `no_model` is a domain with no champion registered: the LLM tier does all of its work.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    triggers: frozenset[EscalationReason] = frozenset(ESCALATION_REASONS)


@dataclass(frozen=True)
class Policy:
    extract_timeout: timedelta = timedelta(seconds=120)
    resolve_timeout: timedelta = timedelta(seconds=180)
    booking_timeout: timedelta = timedelta(seconds=30)
    input_timeout: timedelta = timedelta(hours=24)
    hold_margin: timedelta = timedelta(seconds=30)
    max_retry_delay: timedelta = timedelta(seconds=30)
    escalation: Mapping[Domain, EscalationRule] = field(default_factory=dict)
    max_escalations_per_trip: int = 4
    # A domain routed below this score, that found no value of its own, is dropped.
    sure_route: float = 0.9
    # The all-LLM counterfactual: every token priced at the LLM tier's rate (USD per million).
    llm_price_per_mtok: tuple[float, float] = (0.40, 0.40)

    def retry_delay(self, attempt: int) -> timedelta:
        return min(self.max_retry_delay, timedelta(seconds=0.5 * 2 ** max(0, attempt - 1)))

    def rule(self, domain: Domain) -> EscalationRule:
        return self.escalation.get(domain, EscalationRule())


@dataclass
class Change:
    """One transition in progress: the record's fields as they will be, and what goes out."""

    record: SagaRecord
    now: datetime
    policy: Policy
    updates: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(init=False)
    outbox: list[Outgoing] = field(init=False)
    seq: int = field(init=False)

    def __post_init__(self) -> None:
        self.steps = dict(self.record.steps)
        self.outbox = list(self.record.outbox)
        self.seq = self.record.event_seq

    def get(self, name: str) -> Any:
        return self.updates.get(name, getattr(self.record, name))

    @property
    def state(self) -> TripState:
        state: TripState = self.get("state")
        return state

    def move(self, state: TripState, **fields: Any) -> None:
        self.updates.update(state=state, **fields)

    def event(self, cls: type[Any], **fields: Any) -> None:
        self.seq += 1
        trip_id = self.record.trip_id
        self.outbox.append(cls(trip_id=trip_id, seq=self.seq, state=self.state, **fields))

    def step_event(self, step: StepRecord, **fields: Any) -> None:
        self.event(StepChanged, domain=step.domain, operation=step.operation, **fields)

    def put(self, step: StepRecord) -> StepRecord:
        self.steps[step.name] = step
        return step

    def dispatch(self, step: StepRecord, task: Outgoing) -> None:
        timeout = {
            "extract": self.policy.extract_timeout,
            "resolve": self.policy.resolve_timeout,
        }.get(step.operation, self.policy.booking_timeout)
        self.put(step.model_copy(update={
            "status": "dispatched", "dispatched_at": self.now, "deadline": self.now + timeout,
            "retry_at": None, "command_id": task.message_id,
        }))  # fmt: skip
        self.outbox.append(task)

    def build(self) -> SagaRecord:
        if (
            not self.updates
            and self.steps == self.record.steps
            and len(self.outbox) == len(self.record.outbox)
        ):
            return self.record
        return self.record.model_copy(update={
            **self.updates, "steps": self.steps, "outbox": tuple(self.outbox),
            "event_seq": self.seq, "updated_at": self.now,
        })  # fmt: skip


# --- commands --------------------------------------------------------------------------------


def _next_attempt(change: Change, name: str, domain: Domain, op: Operation) -> StepRecord:
    current = change.steps.get(name) or StepRecord(name=name, domain=domain, operation=op)
    return current.model_copy(update={"attempt": current.attempt + 1})


def _text(change: Change) -> dict[str, Any]:
    """What a model reads: the request and the user's answers, as one text and as parts."""
    parts = (change.record.request.text, *change.get("answers"))
    return {"text": " ".join(parts), "text_parts": parts}


def send_extract(change: Change, domain: Domain) -> None:
    """(Re)send a domain's extraction to the model version it was routed to."""
    step = _next_attempt(change, step_name(domain, "extract"), domain, "extract")
    step = step.model_copy(update={"answers": len(change.get("answers"))})
    record = change.record
    change.dispatch(step, ExtractTask(
        message_id=subjects.command_id(record.trip_id, step.name, step.attempt),
        trip_id=record.trip_id, step=step.name, domain=domain, **_text(change),
        reference_date=record.request.reference_date, model_id=step.model_id,
    ))  # fmt: skip
    change.step_event(step, status="dispatched", detail=step.model_id)


def route_extract(change: Change, domain: Domain, assignment: Assignment) -> None:
    """A domain's first extraction: to its champion (or canary), mirrored to its shadows."""
    name = step_name(domain, "extract")
    if assignment.model_id is None:
        problem = Problem(code="no_model", message=f"no {domain} model is registered as champion")
        failure = NeedsEscalation(
            trip_id=change.record.trip_id, step=name, domain=domain, reason="no_model",
            errors=(problem,),
        )  # fmt: skip
        step = StepRecord(name=name, domain=domain, operation="extract", status="escalated",
                          result=failure)  # fmt: skip
        change.step_event(change.put(step), status="escalated", reason="no_model",
                          errors=(problem,))  # fmt: skip
        return
    change.put(StepRecord(name=name, domain=domain, operation="extract",
                          model_id=assignment.model_id))  # fmt: skip
    send_extract(change, domain)
    record = change.record
    for shadow in assignment.shadows:  # the answer comes back under another step: never used
        mirror = f"{domain}.shadow.{slug_of(shadow)}"
        change.outbox.append(ExtractTask(
            message_id=subjects.command_id(record.trip_id, mirror, 1), trip_id=record.trip_id,
            step=mirror, domain=domain, text=record.request.text,
            reference_date=record.request.reference_date, model_id=shadow, shadow=True,
        ))  # fmt: skip


def send_resolve(change: Change, domain: Domain, failed: NeedsEscalation) -> None:
    """Hand a step the SLM could not settle to the LLM tier, with what the trip knows."""
    step = _next_attempt(change, step_name(domain, "resolve"), domain, "resolve")
    step = step.model_copy(update={"answers": len(change.get("answers"))})
    record = change.record
    known = {d: p for d, p in complete(extracted(change)).items() if d != domain}
    change.updates["escalations"] = (*change.get("escalations"), failed.reason)
    change.dispatch(step, ResolveTask(
        message_id=subjects.command_id(record.trip_id, step.name, step.attempt),
        trip_id=record.trip_id, step=step.name, domain=domain, **_text(change),
        reference_date=record.request.reference_date, reason=failed.reason,
        attempt=failed.attempt, errors=failed.errors, known=known,
    ))  # fmt: skip
    change.step_event(step, status="dispatched", reason=failed.reason)


def send_hold(change: Change, domain: Domain, params: Request, *, new_hold: bool) -> None:
    """Send (or re-send) a hold. A new hold gets a new key, recorded for undo before it goes."""
    name = step_name(domain, "hold")
    step = _next_attempt(change, name, domain, "hold")
    if new_hold or step.hold_key is None:
        generation = 1 + sum(1 for key in change.get("compensations") if f":{domain}.hold:" in key)
        key = f"{change.record.trip_id}:{domain}.hold:{generation}"
        change.updates["compensations"] = (*change.get("compensations"), key)
        step = step.model_copy(update={"hold_key": key, "result": None})
    assert step.hold_key is not None
    change.dispatch(step, HoldTask(
        message_id=attempt_id(change.record.trip_id, step, step.attempt),
        trip_id=change.record.trip_id, step=name, domain=domain, params=params,
        hold_key=step.hold_key,
    ))  # fmt: skip
    change.step_event(step, status="dispatched")


def send_confirm(change: Change, domain: Domain, hold: Held) -> None:
    step = _next_attempt(change, step_name(domain, "confirm"), domain, "confirm")
    change.dispatch(step, ConfirmTask(
        message_id=attempt_id(change.record.trip_id, step, step.attempt),
        trip_id=change.record.trip_id, step=step.name, domain=domain, hold_id=hold.hold_id,
        idempotency_key=f"{hold.hold_key}:confirm",
    ))  # fmt: skip
    change.step_event(step, status="dispatched", detail=hold.hold_id)


def send_cancel(change: Change, hold_key: str) -> None:
    domain = _domain_of(hold_key)
    name = step_name(domain, "cancel", hold_key)
    step = _next_attempt(change, name, domain, "cancel").model_copy(update={"hold_key": hold_key})
    change.dispatch(step, CancelTask(
        message_id=attempt_id(change.record.trip_id, step, step.attempt),
        trip_id=change.record.trip_id, step=name, domain=domain, hold_key=hold_key,
        idempotency_key=f"{hold_key}:cancel",
    ))  # fmt: skip
    change.step_event(step, status="dispatched")


def resend(change: Change, step: StepRecord) -> None:
    """Send a step's command again (a retry, or a reply that never came)."""
    if step.operation == "extract":
        send_extract(change, step.domain)
    elif step.operation == "resolve":
        failed = change.steps[step_name(step.domain, "extract")].result
        assert isinstance(failed, NeedsEscalation)
        send_resolve(change, step.domain, failed)
    elif step.operation == "hold":
        send_hold(change, step.domain, hold_params(change)[step.domain], new_hold=False)
    elif step.operation == "confirm":
        hold = change.steps[step_name(step.domain, "hold")].result
        assert isinstance(hold, Held)
        send_confirm(change, step.domain, hold)
    else:
        assert step.hold_key is not None
        send_cancel(change, step.hold_key)


# --- what the trip knows ---------------------------------------------------------------------


def settled_step(change: Change, domain: Domain) -> StepRecord | None:
    """The step whose extraction the domain goes on with: the LLM tier's when it resolved it."""
    for operation in ("resolve", "extract"):
        step = change.steps.get(step_name(domain, operation))
        if step is not None and step.status == "succeeded" and isinstance(step.result, Extracted):
            return step
    return None


def handled_by(step: StepRecord) -> Literal["slm", "llm", "user"]:
    """Who settled a domain: the user when the command that settled it carried the user's
    answers, else the tier that answered it."""
    if step.answers:
        return "user"
    call = step.result.call if isinstance(step.result, Extracted) else None
    return call.tier if call else ("llm" if step.operation == "resolve" else "slm")


def settled(change: Change, domain: Domain) -> Extracted | None:
    """The domain's accepted extraction: the LLM tier's when it resolved the step."""
    step = settled_step(change, domain)
    return step.result if step is not None and isinstance(step.result, Extracted) else None


def extracted(change: Change) -> dict[Domain, Request]:
    return {
        domain: found.params
        for domain in change.record.domains
        if (found := settled(change, domain)) is not None
    }


def held(change: Change) -> dict[Domain, Held]:
    out: dict[Domain, Held] = {}
    for domain in change.record.domains:
        step = change.steps.get(step_name(domain, "hold"))
        if step is not None and step.status == "succeeded" and isinstance(step.result, Held):
            out[domain] = step.result
    return out


def hold_params(change: Change) -> dict[Domain, Request]:
    params = complete(extracted(change))
    insurance = params.get("insurance")
    if isinstance(insurance, InsuranceRequest):
        offers: dict[Domain, Offer] = {d: h.offer for d, h in held(change).items()}
        params["insurance"] = with_trip_cost(insurance, offers)
    return params


# --- entering a state ------------------------------------------------------------------------


def finish(change: Change, state: TripState, reason: str | None = None, **fields: Any) -> None:
    change.move(state, reason=reason, deadline=None)
    change.event(TripFinished, reason=reason, accounting=accounting(change), **fields)


def accounting(change: Change) -> Accounting:
    """Per tier: calls, tokens and cost; the all-LLM counterfactual; who settled each domain."""
    calls: tuple[ModelCall, ...] = change.get("calls")
    usage = {}
    for tier in ("slm", "llm"):
        mine = [c for c in calls if c.tier == tier]
        usage[tier] = TierUsage(
            calls=sum(c.calls for c in mine),
            tokens_in=sum(c.tokens_in for c in mine),
            tokens_out=sum(c.tokens_out for c in mine),
            cost_usd=round(sum(c.cost_usd for c in mine), 6),
        )
    price_in, price_out = change.policy.llm_price_per_mtok
    all_llm = sum(c.tokens_in * price_in + c.tokens_out * price_out for c in calls) / 1e6
    handled: dict[Domain, Literal["slm", "llm", "user"]] = {}
    for domain in change.record.domains:
        step = settled_step(change, domain)
        if step is not None and isinstance(step.result, Extracted) and step.result.call:
            handled[domain] = handled_by(step)
    reasons: dict[str, int] = {}
    for reason in change.get("escalations"):
        reasons[reason] = reasons.get(reason, 0) + 1
    return Accounting(
        slm=usage["slm"], llm=usage["llm"],
        cost_usd=round(usage["slm"].cost_usd + usage["llm"].cost_usd, 6),
        all_llm_cost_usd=round(all_llm, 6), escalations=reasons, handled_by=handled,
    )  # fmt: skip


def compensate(
    change: Change, reason: str, *, cancelled: bool = False, errors: tuple[Problem, ...] = ()
) -> None:
    """Release every hold ever asked for, newest first; with none, the trip simply ends."""
    if not change.get("compensations"):
        finish(change, "cancelled" if cancelled else "failed", reason, errors=errors)
        return
    change.move(
        "compensating", reason=reason, question=None, deadline=None, cancel_requested=cancelled
    )
    advance_compensation(change)


def ask(change: Change, question: str, domains: tuple[Domain, ...]) -> None:
    expires = change.now + change.policy.input_timeout
    change.move("needs_input", question=question, deadline=expires)
    change.event(TripNeedsInput, question=question, domains=domains, expires_at=expires)


# --- the transitions -------------------------------------------------------------------------


WHAT_TO_BOOK = (
    f"I could not tell what to book. I can book {BOOKABLE}: which do you need, "
    "and for where and when?"
)


def begin(
    request: TripRequest,
    route: Route,
    assignments: Mapping[Domain, Assignment],
    now: datetime,
    policy: Policy,
    routing: Sequence[CallRecord] = (),
    *,
    owner: str = "",
) -> SagaRecord:
    """A new trip of `owner`'s: received, then planned by its route (`plan`). `routing` are
    the records of the routing decision, for the call log."""
    record = SagaRecord(trip_id=request.trip_id, request=request, owner=owner, created_at=now)
    return _planned(record, route, assignments, now, policy, routing, received=True)


def replan(
    record: SagaRecord,
    answer: TripAnswer,
    route: Route,
    assignments: Mapping[Domain, Assignment],
    now: datetime,
    policy: Policy,
    routing: Sequence[CallRecord] = (),
) -> SagaRecord:
    """The user said what to book after the route found nothing: plan again on the request
    and every answer (the service routed them)."""
    if record.state != "needs_input" or record.domains or answer.text in record.answers:
        return record
    answered = record.model_copy(update={
        "answers": (*record.answers, answer.text), "question": None, "deadline": None,
    })  # fmt: skip
    return _planned(answered, route, assignments, now, policy, routing)


def _planned(
    record: SagaRecord,
    route: Route,
    assignments: Mapping[Domain, Assignment],
    now: datetime,
    policy: Policy,
    routing: Sequence[CallRecord],
    *,
    received: bool = False,
) -> SagaRecord:
    """`record` with its route, the routing records in its outbox, planned."""
    routed = record.model_copy(update={
        "domains": route.domains, "unsupported": route.unsupported,
        "route_scores": dict(route.scores),
    })  # fmt: skip
    change = Change(routed, now, policy)
    change.outbox.extend(routing)
    if received:
        change.event(TripReceived, text=routed.request.text)
    plan(change, route, assignments)
    return change.build()


def plan(change: Change, route: Route, assignments: Mapping[Domain, Assignment]) -> None:
    """Extract every domain the route found, at once; a request for nothing Skiff books is
    declined; a request the route found nothing in becomes a question."""
    record = change.record
    if route.unsupported:  # the LLM tier records work no micro-SLM covers (the flywheel's input)
        attempt = len(record.answers) + 1
        change.outbox.append(ResolveTask(
            message_id=subjects.command_id(record.trip_id, "unsupported.resolve", attempt),
            trip_id=record.trip_id, step="unsupported.resolve", domain=None,
            text=" ".join((record.request.text, *record.answers)),
            reference_date=record.request.reference_date, reason="no_model",
            unsupported=route.unsupported,
        ))  # fmt: skip
    if not route.domains and not route.unsupported:
        ask(change, WHAT_TO_BOOK, ())
        return
    change.event(
        TripPlanned, domains=route.domains, unsupported=route.unsupported, routed_by=route.by
    )
    if not route.domains:
        asked = ", ".join(w.replace("_", " ") for w in route.unsupported)
        message = f"Skiff cannot book {asked}; it can book {BOOKABLE}."
        change.event(TripDeclined, unsupported=route.unsupported, bookable=DOMAINS,
                     message=message)  # fmt: skip
        finish(change, "failed", f"no micro-SLM covers: {', '.join(route.unsupported)}")
        return
    change.move("extracting")
    for domain in route.domains:
        route_extract(change, domain, assignments.get(domain, Assignment(None)))
    advance(change)  # domains without a champion go to the LLM tier at once


def attempt_id(trip_id: str, step: StepRecord, attempt: int) -> str:
    """The message id of a step's command at `attempt`: a hold's names its key (a new hold, a
    new key), every other command's its trip, step and attempt (`subjects.command_id`)."""
    if step.operation == "hold":
        return f"{step.hold_key}:{attempt}"
    return subjects.command_id(trip_id, step.name, attempt)


def foreign(record: SagaRecord, result: WorkerReply) -> bool:
    """A reply to a command this trip did not send for the step: forged or misdirected. An
    extraction answers only its last attempt (a retry may carry the user's new answers); a
    hold, confirmation or release is the same request at every attempt (idempotent by key),
    so a late reply to an earlier attempt answers it too. Either way it must change nothing."""
    step = record.steps.get(result.step)
    if step is None:
        return False
    if step.operation in ("extract", "resolve"):
        return result.command_id != step.command_id
    sent = {attempt_id(record.trip_id, step, n) for n in range(1, step.attempt + 1)}
    return result.command_id not in sent


def on_result(record: SagaRecord, result: WorkerReply, now: datetime, policy: Policy) -> SagaRecord:
    """A worker replied. Replies nobody waits for (late, duplicate, stray, or to a command
    this trip did not send last) change nothing."""
    step = record.steps.get(result.step)
    if (
        record.terminal
        or step is None
        or step.status != "dispatched"
        or foreign(record, result)
        or not isinstance(result, REPLY_KINDS[step.operation])
        or (isinstance(result, Held | Cancelled) and result.hold_key != step.hold_key)
    ):
        return record
    change = Change(record, now, policy)
    if (call := getattr(result, "call", None)) is not None:
        change.updates["calls"] = (*record.calls, call)
    if isinstance(result, Failed) and result.retryable:
        retry_at = now + policy.retry_delay(step.attempt)
        change.put(step.model_copy(update={"status": "pending", "retry_at": retry_at}))
        change.step_event(step, status="pending", reason=result.reason, errors=result.errors)
    else:
        status = (
            "escalated" if isinstance(result, NeedsEscalation | Clarify)
            else "failed" if isinstance(result, Failed)
            else "succeeded"
        )  # fmt: skip
        step = change.put(step.model_copy(update={"status": status, "result": result}))
        change.step_event(
            step,
            status=status,
            handled_by=result.call.tier if isinstance(result, Extracted) and result.call else None,
            reason=getattr(result, "reason", None),
            errors=getattr(result, "errors", ()),
            detail=_detail(result),
        )
        if isinstance(result, Failed):
            _on_failure(change, step, result)
    advance(change)
    return change.build()


def _detail(result: WorkerReply) -> str | None:
    if isinstance(result, Held):
        offer = result.offer
        return f"held {offer.offer_id} for {offer.total_price:.2f} {offer.currency}"
    if isinstance(result, Confirmed):
        return f"booked {result.confirmation_code}"
    if isinstance(result, Clarify):
        return result.question
    return None


def _on_failure(change: Change, step: StepRecord, failure: Failed) -> None:
    """A step failed for good."""
    if step.operation in ("extract", "resolve", "cancel"):
        return  # extraction gaps become a question; a release that cannot work has nothing held
    if step.operation == "confirm" and failure.reason == "hold_expired":
        params = hold_params(change)[step.domain]
        send_hold(change, step.domain, params, new_hold=True)
        change.put(change.steps[step.name].model_copy(update={"status": "pending", "result": None}))
        return
    if change.state in BEFORE_PIVOT:
        compensate(change, f"{step.name} failed: {failure.reason}")
    else:  # after the pivot only a failed re-hold lands here: undo what was booked
        compensate(change, f"{step.name} failed after the pivot: {failure.reason}")


def on_user(
    record: SagaRecord, message: TripAnswer | TripCancel, now: datetime, policy: Policy
) -> SagaRecord:
    change = Change(record, now, policy)
    if isinstance(message, TripCancel):
        if record.state not in BEFORE_PIVOT:
            return record  # the pivot has passed: the trip is being booked
        compensate(change, message.reason, cancelled=True)
        return change.build()
    if record.state != "needs_input" or message.text in record.answers:
        return record
    change.move("extracting", answers=(*record.answers, message.text), question=None, deadline=None)
    # What is missing is decided before any domain is sent again: a re-sent domain no longer
    # counts as settled, and its values would seem missing to the domains it fills.
    gaps = missing(complete(extracted(change)))
    for domain in record.domains:
        step = record.steps.get(step_name(domain, "extract"))
        if step is None or step.status != "succeeded" or domain in gaps:
            send_extract(change, domain)
    return change.build()


def on_tick(record: SagaRecord, now: datetime, policy: Policy) -> SagaRecord:
    """The clock: retries that are due, replies that never came, questions nobody answered."""
    if record.terminal:
        return record
    change = Change(record, now, policy)
    if record.state == "needs_input" and record.deadline is not None and record.deadline <= now:
        compensate(change, "no answer in time: the trip expired")
        return change.build()
    for step in list(record.steps.values()):
        due_retry = step.status == "pending" and step.retry_at is not None and step.retry_at <= now
        overdue = step.status == "dispatched" and step.deadline is not None and step.deadline <= now
        if overdue and step.operation in ("extract", "resolve"):
            problem = Problem(code="timeout", message=f"no reply by {step.deadline:%H:%M:%S}",
                              field=step.domain)  # fmt: skip
            failure = NeedsEscalation(trip_id=record.trip_id, step=step.name, domain=step.domain,
                                      reason="timeout", errors=(problem,))  # fmt: skip
            late = change.put(step.model_copy(update={"status": "escalated", "result": failure}))
            change.step_event(late, status="escalated", reason="timeout", errors=(problem,))
        elif (due_retry or overdue) and change.state in ACTIVE[step.operation]:
            resend(change, step)
    advance(change)
    return change.build()


# --- what happens next -----------------------------------------------------------------------


def advance(change: Change) -> None:
    """Move the trip on as far as its steps allow."""
    if change.state == "extracting":
        advance_extraction(change)
    if change.state == "holding":
        advance_holding(change)
    if change.state == "confirming":
        advance_confirming(change)
    if change.state == "compensating":
        advance_compensation(change)


def _steps(change: Change, operation: Operation) -> list[StepRecord]:
    return [s for s in change.steps.values() if s.operation == operation]


Decision = Literal["escalate", "ask", "refuse"]


def escalation_decision(change: Change, domain: Domain, reason: EscalationReason) -> Decision:
    """Whether an SLM failure goes to the LLM tier, to the user, or ends the trip."""
    rule = change.policy.rule(domain)
    if not rule.enabled:
        return "refuse"
    used = len(change.get("escalations"))
    if reason not in rule.triggers or used >= change.policy.max_escalations_per_trip:
        return "ask"
    return "escalate"


def advance_extraction(change: Change) -> None:
    """Every domain settled by a tier → hold; an SLM failure → the LLM tier (per policy);
    what no tier could settle → one question to the user."""
    waiting = False
    unsettled: list[StepRecord] = []
    for domain in change.record.domains:
        extract = change.steps[step_name(domain, "extract")]
        resolve = change.steps.get(step_name(domain, "resolve"))
        if extract.status == "dispatched" or (
            resolve is not None and resolve.status in ("dispatched", "pending")
        ):
            waiting = True
        elif settled(change, domain) is None:
            failure = extract.result
            if resolve is None and isinstance(failure, NeedsEscalation):
                decision = escalation_decision(change, domain, failure.reason)
                if decision == "refuse":
                    compensate(change, f"{domain}: {failure.reason} (escalation is off)")
                    return
                if decision == "escalate":
                    send_resolve(change, domain, failure)
                    waiting = True
                    continue
            unsettled.append(resolve or extract)
    if waiting:
        return
    if silent := [s for s in unsettled if _timed_out(s)]:
        unavailable(change, silent)
        return
    if unsettled:
        ask(change, _question(unsettled), tuple(s.domain for s in unsettled))
        return
    drop_copied_domains(change)
    gaps = missing(complete(extracted(change)))
    if gaps:
        ask(change, question_for(gaps), tuple(gaps))
        return
    for domain in change.record.domains:
        if (answer := accepted(change, domain)) is not None:
            change.outbox.append(answer)
    change.move("holding")
    advance_holding(change)


def _timed_out(step: StepRecord) -> bool:
    return isinstance(step.result, NeedsEscalation) and step.result.reason == "timeout"


def unavailable(change: Change, silent: list[StepRecord]) -> None:
    """No tier answered a part in time (a worker or the LLM tier down, a command
    dead-lettered): the user cannot fix that by answering, so the trip ends saying so."""
    domains = ", ".join(s.domain for s in silent)
    errors = tuple(
        Problem(code="unavailable", field=s.domain, message=f"no {s.domain} service answered")
        for s in silent
    )
    compensate(change, f"unavailable: {domains} did not answer in time; nothing was booked",
               errors=errors)  # fmt: skip


def drop_copied_domains(change: Change) -> None:
    """A domain the router was not sure of, whose extraction found no value of its own (every
    value it read is one the trip's other steps read too), was most likely added by mistake:
    it is dropped, not booked. A domain the router was sure of stays, however few values it
    has ("…; a hotel for those nights")."""
    drafts = {d: found.draft for d in change.record.domains
              if (found := settled(change, d)) is not None and found.draft is not None}  # fmt: skip
    dropped = []
    for domain, draft in drafts.items():
        score = change.record.route_scores.get(domain)
        if score is None or score >= change.policy.sure_route or len(change.record.domains) < 2:
            continue
        own = {_said(v) for v in draft.values() if v is not None}
        others = {_said(v) for d, other in drafts.items() if d != domain and d not in dropped
                  for v in other.values() if v is not None}  # fmt: skip
        if own <= others:
            dropped.append(domain)
    for domain in dropped:
        step = change.steps[step_name(domain, "extract")]
        step = change.put(step.model_copy(update={"status": "dropped"}))
        change.step_event(step, status="dropped", detail="every value it read is another step's")
    if dropped:
        remaining = tuple(d for d in change.record.domains if d not in dropped)
        change.record = change.record.model_copy(update={"domains": remaining})
        change.updates["domains"] = remaining


def _said(value: object) -> str:
    return " ".join(str(value).casefold().split())


def accepted(change: Change, domain: Domain) -> AnswerAccepted | None:
    """The call-log record of the answer `domain` goes on with: its own extraction (before the
    trip's other parts fill its gaps), read from the text its command carried.

    `answered_by` is the user when that text held the user's answers, else the tier whose
    step answered; the call it names is the command's last attempt's (the LLM tier's winning
    candidate is its last)."""
    step = settled_step(change, domain)
    if step is None or not isinstance(step.result, Extracted):
        return None
    found, call = step.result, step.result.call
    record = change.record
    parts = [record.request.text, *change.get("answers")[: step.answers]]
    sent = " ".join(parts)
    if found.text and found.text.startswith(f"{sent} "):  # the LLM tier appended context
        parts.append(found.text[len(sent) + 1 :])
    tier: Literal["slm", "llm"] = "llm" if step.operation == "resolve" else "slm"
    if tier == "llm":
        model_id = tier_model_id(call.model, call.version) if call else tier_model_id("?", "?")
    else:
        routed = model_id_for(f"{domain}.extract", call.model, call.version) if call else "?"
        model_id = step.model_id or routed
    command = attempt_id(record.trip_id, step, step.attempt)
    return accepted_answer(
        trip_id=record.trip_id, domain=domain, answer=found,
        answered_by=handled_by(step), model_id=model_id,
        call_record_id=call_record_id(command, max(0, call.calls - 1) if call else 0),
        text_parts=parts, reference_date=record.request.reference_date,
    )  # fmt: skip


def _question(steps: list[StepRecord]) -> str:
    """The LLM tier's own questions when it asked any, else what went wrong, per domain."""
    parts = []
    for step in steps:
        if isinstance(step.result, Clarify):
            parts.append(step.result.question)
            continue
        problems = ", ".join(p.message for p in getattr(step.result, "errors", ()))
        parts.append(f"I could not understand the {step.domain} part: {problems or 'no answer'}.")
    return " ".join(parts) + " Please tell me again."


def advance_holding(change: Change) -> None:
    params = hold_params(change)
    domains = change.record.domains
    first = [d for d in HOLD_FIRST if d in domains]
    for domain in first:
        if step_name(domain, "hold") not in change.steps:
            send_hold(change, domain, params[domain], new_hold=True)
    holds = held(change)
    if any(d not in holds for d in first):
        return
    if "insurance" in domains:
        if step_name("insurance", "hold") not in change.steps:
            send_hold(change, "insurance", params["insurance"], new_hold=True)
        if "insurance" not in holds:
            return
    expiring = [
        d for d, h in holds.items() if h.expires_at < change.now + change.policy.hold_margin
    ]
    if expiring:  # never take a hold into the pivot that may lapse under it: hold it again
        for domain in expiring:
            send_hold(change, domain, params[domain], new_hold=True)
        return
    change.move("confirming")
    for domain, hold in holds.items():
        send_confirm(change, domain, hold)


def advance_confirming(change: Change) -> None:
    holds = held(change)
    for domain in change.record.domains:
        confirm = change.steps.get(step_name(domain, "confirm"))
        waiting = confirm is not None and confirm.status == "pending" and confirm.retry_at is None
        if waiting and domain in holds:  # re-held after an expiry: confirm the new hold
            send_confirm(change, domain, holds[domain])
    confirms = _steps(change, "confirm")
    if len(confirms) < len(change.record.domains) or any(s.status != "succeeded" for s in confirms):
        return
    bookings = []
    for step in confirms:
        assert isinstance(step.result, Confirmed)
        offer = holds[step.domain].offer
        bookings.append(Booking(
            domain=step.domain, confirmation_code=step.result.confirmation_code,
            hold_id=step.result.hold_id, offer=offer, total_price=step.result.total_price,
            currency=step.result.currency,
        ))  # fmt: skip
    params = hold_params(change)
    itinerary = tuple(_item(change, d, params[d]) for d in change.record.domains)
    total = round(sum(b.total_price for b in bookings), 2)
    finish(change, "completed", bookings=tuple(bookings), itinerary=itinerary,
           total_price=total, currency=bookings[0].currency if bookings else None)  # fmt: skip


def _item(change: Change, domain: Domain, params: Request) -> ItineraryItem:
    step = settled_step(change, domain)
    assert step is not None and isinstance(step.result, Extracted)
    found = step.result
    return ItineraryItem(
        domain=domain, params=params, handled_by=handled_by(step), confidence=found.confidence,
        call=found.call,
    )  # fmt: skip


def advance_compensation(change: Change) -> None:
    """One release at a time, newest hold first; the trip ends when all are done."""
    for key in reversed(change.get("compensations")):
        step = change.steps.get(step_name(_domain_of(key), "cancel", key))
        if step is None:
            send_cancel(change, key)
            return
        if step.status not in ("succeeded", "failed"):
            return  # waiting for it, or for its retry
    final: TripState = "cancelled" if change.get("cancel_requested") else "compensated"
    finish(change, final, change.get("reason"))


def _domain_of(hold_key: str) -> Domain:
    domain: Domain = hold_key.rsplit(":", 2)[-2].split(".")[0]  # type: ignore[assignment]
    return domain
