"""Trip events on `trip.events.<trip_id>`: every saga transition, typed, in order (`seq`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from skiff_contracts.base import Frozen, utc_now
from skiff_contracts.domains import Domain, DomainRequest
from skiff_contracts.messages import ModelCall, Tier
from skiff_contracts.problems import EscalationReason, Problem
from skiff_contracts.states import Operation, StepStatus, TripState


class EventBase(Frozen):
    trip_id: str
    seq: int = Field(ge=1, description="1, 2, 3… per trip; duplicates share a seq")
    state: TripState
    occurred_at: datetime = Field(default_factory=utc_now)

    @property
    def message_id(self) -> str:
        return f"{self.trip_id}:event:{self.seq}"


class TripReceived(EventBase):
    kind: Literal["trip_received"] = "trip_received"
    text: str


class TripPlanned(EventBase):
    kind: Literal["trip_planned"] = "trip_planned"
    domains: tuple[Domain, ...]
    unsupported: tuple[str, ...] = ()


class StepChanged(EventBase):
    kind: Literal["step_changed"] = "step_changed"
    domain: Domain
    operation: Operation
    status: StepStatus
    handled_by: Tier | None = None
    reason: EscalationReason | str | None = None
    errors: tuple[Problem, ...] = ()


class ItineraryItem(Frozen):
    """One domain's part of the trip: what was understood, and who understood it."""

    domain: Domain
    params: DomainRequest
    handled_by: Tier
    confidence: float | None = None
    call: ModelCall | None = None


class TripFinished(EventBase):
    """The last event of every trip."""

    kind: Literal["trip_finished"] = "trip_finished"
    itinerary: tuple[ItineraryItem, ...] = ()
    reason: str | None = None
    errors: tuple[Problem, ...] = ()


TripEvent = Annotated[
    TripReceived | TripPlanned | StepChanged | TripFinished, Field(discriminator="kind")
]
TRIP_EVENT: TypeAdapter[TripReceived | TripPlanned | StepChanged | TripFinished] = TypeAdapter(
    TripEvent
)
