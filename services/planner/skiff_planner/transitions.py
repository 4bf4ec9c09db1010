"""The saga as pure functions: (record, input, now) → new record with its outbox filled.

No I/O here. Every function returns a record whose `outbox` carries the events and commands
the transition produced; the service persists the record (compare-and-set) before publishing
anything, so a crash at any point leaves a record that says what still has to go out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from skiff_contracts import subjects
from skiff_contracts.domains import Domain
from skiff_contracts.events import (
    ItineraryItem,
    StepChanged,
    TripFinished,
    TripPlanned,
    TripReceived,
)
from skiff_contracts.messages import Extracted, ExtractTask, Failed, NeedsEscalation, TripRequest
from skiff_contracts.problems import Problem
from skiff_contracts.saga import Outgoing, SagaRecord, StepRecord
from skiff_contracts.states import TripState
from skiff_extraction.router import Route

WorkerResult = Extracted | NeedsEscalation | Failed


@dataclass(frozen=True)
class Policy:
    step_timeout: timedelta = timedelta(seconds=120)


class Emitter:
    """Collects a transition's outgoing messages, numbering events as they are added."""

    def __init__(self, record: SagaRecord) -> None:
        self.record = record
        self.seq = record.event_seq
        self.items: list[Outgoing] = list(record.outbox)

    def event(self, cls: type[Any], state: TripState, **fields: Any) -> None:
        self.seq += 1
        self.items.append(cls(trip_id=self.record.trip_id, seq=self.seq, state=state, **fields))

    def command(self, task: ExtractTask) -> None:
        self.items.append(task)

    def build(self, now: datetime, **changes: Any) -> SagaRecord:
        return self.record.model_copy(
            update={
                "event_seq": self.seq,
                "outbox": tuple(self.items),
                "updated_at": now,
                **changes,
            }
        )


def extract_task(record: SagaRecord, step: StepRecord) -> ExtractTask:
    return ExtractTask(
        message_id=subjects.command_id(record.trip_id, step.step, step.attempt),
        trip_id=record.trip_id,
        step=step.step,
        domain=step.domain,
        text=record.request.text,
        reference_date=record.request.reference_date,
    )


def begin(request: TripRequest, route: Route, now: datetime, policy: Policy) -> SagaRecord:
    """A new trip: received, planned, and every domain's extraction dispatched at once."""
    record = SagaRecord(
        trip_id=request.trip_id,
        request=request,
        domains=route.domains,
        unsupported=route.unsupported,
        created_at=now,
    )
    out = Emitter(record)
    out.event(TripReceived, "received", text=request.text)
    if not route.domains:
        reason = (
            f"no micro-SLM covers: {', '.join(route.unsupported)}"
            if route.unsupported
            else "the request names nothing Skiff can book"
        )
        out.event(TripPlanned, "failed", domains=(), unsupported=route.unsupported)
        out.event(TripFinished, "failed", reason=reason)
        return out.build(now, state="failed", reason=reason)
    out.event(TripPlanned, "extracting", domains=route.domains, unsupported=route.unsupported)
    steps: dict[Domain, StepRecord] = {}
    for domain in route.domains:
        step = StepRecord(
            domain=domain,
            status="dispatched",
            attempt=1,
            dispatched_at=now,
            deadline=now + policy.step_timeout,
        )
        steps[domain] = step
        out.command(extract_task(record, step))
        out.event(
            StepChanged, "extracting", domain=domain, operation="extract", status="dispatched"
        )
    return out.build(now, state="extracting", steps=steps)


def _status_of(result: WorkerResult) -> tuple[str, str | None]:
    if isinstance(result, Extracted):
        return "succeeded", None
    if isinstance(result, NeedsEscalation):
        return "escalated", result.reason
    return "failed", result.reason


def apply_result(record: SagaRecord, result: WorkerResult, now: datetime) -> SagaRecord:
    """A worker replied. Replies for steps no longer waiting (late, duplicate) change nothing."""
    domain = result.domain
    step = record.steps.get(domain) if domain is not None else None
    if record.terminal or step is None or step.status != "dispatched" or result.step != step.step:
        return record
    status, reason = _status_of(result)
    out = Emitter(record)
    out.event(
        StepChanged,
        record.state,
        domain=step.domain,
        operation=step.operation,
        status=status,
        handled_by=result.call.tier if isinstance(result, Extracted) and result.call else None,
        reason=reason,
        errors=getattr(result, "errors", ()),
    )
    steps = {
        **record.steps,
        step.domain: step.model_copy(update={"status": status, "result": result}),
    }
    return finish_if_done(out, now, steps)


def expire_steps(record: SagaRecord, now: datetime) -> SagaRecord:
    """Steps past their deadline end as escalated with reason `timeout`."""
    late = [
        s for s in record.steps.values()
        if s.status == "dispatched" and s.deadline is not None and s.deadline <= now
    ]  # fmt: skip
    if record.terminal or not late:
        return record
    out = Emitter(record)
    steps = dict(record.steps)
    for step in late:
        problem = Problem(code="timeout", message=f"no reply by {step.deadline:%H:%M:%S}")
        out.event(
            StepChanged,
            record.state,
            domain=step.domain,
            operation=step.operation,
            status="escalated",
            reason="timeout",
            errors=(problem,),
        )
        steps[step.domain] = step.model_copy(update={"status": "escalated"})
    return finish_if_done(out, now, steps)


def finish_if_done(out: Emitter, now: datetime, steps: dict[Domain, StepRecord]) -> SagaRecord:
    """When no step is still waiting, the trip finishes: completed only if every step succeeded."""
    if any(s.status == "dispatched" for s in steps.values()):
        return out.build(now, steps=steps)
    itinerary = tuple(
        ItineraryItem(
            domain=s.result.domain,
            params=s.result.params,
            handled_by=s.result.call.tier if s.result.call else "slm",
            confidence=s.result.confidence,
            call=s.result.call,
        )
        for s in steps.values()
        if isinstance(s.result, Extracted)
    )
    unresolved = [s for s in steps.values() if s.status != "succeeded"]
    if not unresolved:
        out.event(TripFinished, "completed", itinerary=itinerary)
        return out.build(now, steps=steps, state="completed")
    reason = "; ".join(f"{s.domain}: {_reason(s)}" for s in unresolved)
    errors = tuple(p for s in unresolved for p in getattr(s.result, "errors", ()))
    out.event(TripFinished, "failed", itinerary=itinerary, reason=reason, errors=errors)
    return out.build(now, steps=steps, state="failed", reason=reason)


def _reason(step: StepRecord) -> str:
    if isinstance(step.result, NeedsEscalation | Failed):
        return step.result.reason
    return "timeout" if step.status == "escalated" else step.status
