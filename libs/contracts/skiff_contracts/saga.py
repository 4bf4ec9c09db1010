"""The saga record: one per trip, kept in the `SAGAS` KV bucket, changed only by compare-and-set.

It is a contract because more than the planner reads it (`skiff status`, tests). The
`outbox` holds the events, commands and accepted answers (for the call log) a transition
produced until they are published: a planner that dies between its state write and its
publishes finds them there on restart.
`compensations` lists the key of every hold the saga ever asked for, recorded before the
hold command went out, so a hold whose reply was lost is released all the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from skiff_contracts.base import Frozen, utc_now
from skiff_contracts.domains import Domain
from skiff_contracts.events import TripEvent
from skiff_contracts.messages import (
    CancelTask,
    ConfirmTask,
    ExtractTask,
    HoldTask,
    ModelCall,
    ResolveTask,
    TripRequest,
    WorkerResult,
)
from skiff_contracts.registry import AnswerAccepted, CallRecord
from skiff_contracts.states import TERMINAL_STATES, Operation, StepStatus, TripState

Outgoing = Annotated[
    TripEvent
    | ExtractTask
    | ResolveTask
    | HoldTask
    | ConfirmTask
    | CancelTask
    | AnswerAccepted
    | CallRecord,
    Field(discriminator="kind"),
]


def step_name(domain: Domain, operation: Operation, hold_key: str | None = None) -> str:
    """The key of a step in the record and the `step` of its messages: `flights.hold`.

    Cancels are per hold (a domain re-held after an expiry has two holds to undo), so
    their names end with the hold's generation: `flights.cancel.2`.
    """
    if operation == "cancel" and hold_key is not None:
        return f"{domain}.cancel.{hold_key.rsplit(':', 1)[-1]}"
    return f"{domain}.{operation}"


class StepRecord(Frozen):
    """One domain's progress through one operation."""

    name: str
    domain: Domain
    operation: Operation
    status: StepStatus = "pending"
    attempt: int = Field(default=0, description="how many times the command was sent")
    dispatched_at: datetime | None = None
    deadline: datetime | None = None
    retry_at: datetime | None = Field(default=None, description="when to send it again")
    hold_key: str | None = None
    model_id: str | None = Field(default=None, description="the model version routed to")
    command_id: str | None = Field(
        default=None, description="the message_id of the last command sent: the one reply taken"
    )
    answers: int = Field(
        default=0, description="how many of the user's answers the last command's text held"
    )
    result: WorkerResult | None = None


class SagaRecord(Frozen):
    """Everything needed to resume a trip after any crash."""

    trip_id: str
    request: TripRequest
    owner: str = Field(
        default="",
        description="the client identity that submitted the trip: the only one "
        "that may follow, answer, cancel or read it",
    )
    state: TripState = "received"
    domains: tuple[Domain, ...] = ()
    unsupported: tuple[str, ...] = Field(
        default=(), description="work the request asks for that no micro-SLM covers"
    )
    route_scores: dict[str, float] = Field(
        default_factory=dict, description="the router's score per label when it routed the trip"
    )
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    compensations: tuple[str, ...] = Field(
        default=(), description="hold keys, in the order the holds were asked for"
    )
    answers: tuple[str, ...] = Field(default=(), description="the user's answers so far")
    escalations: tuple[str, ...] = Field(
        default=(), description="the reason of every step sent to the LLM tier, in order"
    )
    calls: tuple[ModelCall, ...] = Field(default=(), description="every model call, for accounting")
    question: str | None = None
    cancel_requested: bool = False
    event_seq: int = Field(default=0, description="events emitted so far")
    outbox: tuple[Outgoing, ...] = Field(
        default=(), description="emitted but not yet confirmed published"
    )
    reason: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    deadline: datetime | None = Field(default=None, description="when waiting for input ends")

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def step(self, domain: Domain, operation: Operation) -> StepRecord | None:
        return self.steps.get(step_name(domain, operation))


class TripStatusQuery(Frozen):
    """Ask the planner for one of your trips' record (`trip.status.<owner>`, request/reply)."""

    kind: Literal["trip_status_query"] = "trip_status_query"
    trip_id: str


class TripStatus(Frozen):
    """The record, or None when no trip of yours has that id (another owner's trip included)."""

    kind: Literal["trip_status"] = "trip_status"
    trip_id: str
    record: SagaRecord | None = None
