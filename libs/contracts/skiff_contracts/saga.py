"""The saga record: one per trip, kept in the `SAGAS` KV bucket, changed only by compare-and-set.

It is a contract because more than the planner reads it (`skiff status`, tests). The
`outbox` holds the events and commands a transition produced until they are published: a
planner that dies between its state write and its publishes finds them there on restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from skiff_contracts.base import Frozen, utc_now
from skiff_contracts.domains import Domain
from skiff_contracts.events import TripEvent
from skiff_contracts.messages import Extracted, ExtractTask, Failed, NeedsEscalation, TripRequest
from skiff_contracts.states import TERMINAL_STATES, Operation, StepStatus, TripState

Outgoing = Annotated[TripEvent | ExtractTask, Field(discriminator="kind")]


class StepRecord(Frozen):
    """One domain's progress through one operation."""

    domain: Domain
    operation: Operation = "extract"
    status: StepStatus = "pending"
    attempt: int = 0
    dispatched_at: datetime | None = None
    deadline: datetime | None = None
    result: Extracted | NeedsEscalation | Failed | None = Field(default=None, discriminator="kind")

    @property
    def step(self) -> str:
        return f"{self.domain}.{self.operation}"


class SagaRecord(Frozen):
    """Everything needed to resume a trip after any crash."""

    trip_id: str
    request: TripRequest
    state: TripState = "received"
    domains: tuple[Domain, ...] = ()
    unsupported: tuple[str, ...] = Field(
        default=(), description="work the request asks for that no micro-SLM covers"
    )
    steps: dict[Domain, StepRecord] = Field(default_factory=dict)
    event_seq: int = Field(default=0, description="events emitted so far")
    outbox: tuple[Outgoing, ...] = Field(
        default=(), description="emitted but not yet confirmed published"
    )
    reason: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES
