"""Trip events on `trip.events.<trip_id>`: every saga transition, typed, in order (`seq`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from skiff_contracts.base import Frozen, utc_now
from skiff_contracts.domains import Domain, DomainRequest
from skiff_contracts.inventory import Offer
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
    routed_by: Literal["slm", "llm"] | None = Field(
        default=None, description="who decided the route: the router, or the LLM tier"
    )


class TripDeclined(EventBase):
    """The request asks only for work Skiff cannot book; the trip ends (failed) after it."""

    kind: Literal["trip_declined"] = "trip_declined"
    unsupported: tuple[str, ...] = Field(description="what was asked that no micro-SLM covers")
    bookable: tuple[Domain, ...] = Field(description="what Skiff can book")
    message: str


class StepChanged(EventBase):
    kind: Literal["step_changed"] = "step_changed"
    domain: Domain
    operation: Operation
    status: StepStatus
    handled_by: Tier | None = None
    reason: EscalationReason | str | None = None
    errors: tuple[Problem, ...] = ()
    detail: str | None = Field(default=None, description="e.g. what was held, the booking code")


class TripNeedsInput(EventBase):
    """The trip waits for the user: answer on `trip.input.<trip_id>` (`skiff answer`)."""

    kind: Literal["trip_needs_input"] = "trip_needs_input"
    question: str
    domains: tuple[Domain, ...] = ()
    expires_at: datetime | None = None


class Booking(Frozen):
    """One confirmed item of the trip."""

    domain: Domain
    confirmation_code: str
    hold_id: str
    offer: Offer
    total_price: float
    currency: str


class ItineraryItem(Frozen):
    """One domain's part of the trip: what was understood, and who understood it."""

    domain: Domain
    params: DomainRequest
    handled_by: Tier
    confidence: float | None = None
    call: ModelCall | None = None


class TierUsage(Frozen):
    """What one tier did for a trip."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


class Accounting(Frozen):
    """Who did the trip's model work, what it cost, and what it would have cost all-LLM."""

    slm: TierUsage = TierUsage()
    llm: TierUsage = TierUsage()
    cost_usd: float = 0.0
    all_llm_cost_usd: float = Field(
        default=0.0, description="the same tokens priced at the LLM tier's rates"
    )
    escalations: dict[str, int] = Field(default_factory=dict, description="by reason")
    handled_by: dict[Domain, Tier] = Field(default_factory=dict)


class TripFinished(EventBase):
    """The last event of every trip."""

    kind: Literal["trip_finished"] = "trip_finished"
    itinerary: tuple[ItineraryItem, ...] = ()
    bookings: tuple[Booking, ...] = ()
    total_price: float | None = None
    currency: str | None = None
    accounting: Accounting | None = None
    reason: str | None = None
    errors: tuple[Problem, ...] = ()


AnyTripEvent = (
    TripReceived | TripPlanned | TripDeclined | StepChanged | TripNeedsInput | TripFinished
)
TripEvent = Annotated[AnyTripEvent, Field(discriminator="kind")]
TRIP_EVENT: TypeAdapter[AnyTripEvent] = TypeAdapter(TripEvent)
