"""Every message on the bus: trip submissions, worker commands and replies.

One frozen model per message, each with a `kind` literal so unions parse by discriminator.
Failure is a value (`NeedsEscalation`, `Failed`, `SubmitRejected`), never an exception.
Within v1 only optional fields are added.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from skiff_contracts.base import Envelope, Frozen, ReplyEnvelope, new_message_id
from skiff_contracts.domains import Domain, DomainRequest, UnsupportedWork
from skiff_contracts.inventory import Offer
from skiff_contracts.problems import EscalationReason, Problem

MAX_REQUEST_CHARS = 2000
"""Longest accepted request text. Longer texts are refused with `SubmitRejected`."""
EARLIEST_REFERENCE_DATE = date(2000, 1, 1)
LATEST_REFERENCE_DATE = date(2099, 12, 31)
"""The "today" a submission or a worker command may carry, inclusive; another is refused
(`SubmitRejected`, or `Failed` from a worker). A fixed calendar window rather than one around
the clock: evaluation replays data sets with their own today (SGD's is 2019-03-01) and the
throughput bench dates trips a year apart from 2026. Every date a worker derives from a
reference in it stays far inside the calendar (9999-12-31 overflowed date arithmetic)."""

Tier = Literal["slm", "llm", "user"]


def trip_id_for(client_request_id: str) -> str:
    """The trip id is derived from the client's request id, so a retried submission is one trip."""
    digest = hashlib.sha256(client_request_id.encode()).hexdigest()
    return f"trip-{digest[:20]}"


def default_reference_date() -> date:
    """Today in UTC: the date relative phrases ("next Friday") resolve against."""
    return date.today()


def _says_something(text: str) -> str:
    """Refuse a text of only whitespace (or invisible format characters): no request at all."""
    if all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise PydanticCustomError("blank_text", "the text is blank: it says nothing")
    return text


def _in_reference_window(value: date) -> date:
    if not EARLIEST_REFERENCE_DATE <= value <= LATEST_REFERENCE_DATE:
        raise PydanticCustomError(
            "reference_date_range",
            "reference_date must be from {earliest} to {latest}",
            {"earliest": EARLIEST_REFERENCE_DATE.isoformat(),
             "latest": LATEST_REFERENCE_DATE.isoformat()},
        )  # fmt: skip
    return value


RequestText = Annotated[
    str, Field(min_length=1, max_length=MAX_REQUEST_CHARS), AfterValidator(_says_something)
]
ReferenceDate = Annotated[date, AfterValidator(_in_reference_window)]


# --- trip submission -------------------------------------------------------------------------


class TripRequest(Frozen):
    """A user's travel request in their own words."""

    kind: Literal["trip_request"] = "trip_request"
    text: RequestText
    reference_date: ReferenceDate = Field(default_factory=default_reference_date)
    client_request_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=new_message_id
    )

    @property
    def trip_id(self) -> str:
        return trip_id_for(self.client_request_id)


class TripAccepted(Frozen):
    """Reply to a submission: the trip exists and its events follow on
    `trip.events.<owner>.<trip_id>`."""

    kind: Literal["trip_accepted"] = "trip_accepted"
    trip_id: str
    duplicate: bool = Field(description="true when this client_request_id was already submitted")


class SubmitRejected(Frozen):
    """Reply to a submission that cannot become a trip (malformed, empty, oversized)."""

    kind: Literal["submit_rejected"] = "submit_rejected"
    errors: tuple[Problem, ...]


SUBMIT_UNAVAILABLE = "unavailable"
"""The code of a `SubmitRejected` problem that a retry can cure (the planner could not store the
trip now, e.g. while JetStream elects a stream leader): send the same request again."""


class SubmitConflict(Frozen):
    """Reply to a submission whose `client_request_id` already names a different trip: another
    text, or another owner's. Nothing is created; send a new id for a new trip."""

    kind: Literal["submit_conflict"] = "submit_conflict"
    trip_id: str
    message: str


SubmitReply = Annotated[TripAccepted | SubmitRejected | SubmitConflict, Field(discriminator="kind")]
SUBMIT_REPLY: TypeAdapter[TripAccepted | SubmitRejected | SubmitConflict] = TypeAdapter(SubmitReply)


# --- commands to workers ---------------------------------------------------------------------


TextParts = Annotated[
    tuple[str, ...],
    Field(description="`text` in its parts, joined by spaces: the request, then each of the "
          "user's answers (the call log redacts each on its own); empty: `text` is one part"),
]  # fmt: skip


def _text_is_its_parts(task: Any) -> Any:
    if task.text_parts and " ".join(task.text_parts) != task.text:
        raise ValueError("text_parts joined by spaces must be the text")
    return task


class ExtractTask(Envelope):
    """Ask a domain worker to turn the request text into a grounded domain request."""

    kind: Literal["extract"] = "extract"
    domain: Domain
    text: RequestText
    text_parts: TextParts = ()
    reference_date: ReferenceDate
    model_id: str | None = Field(default=None, description="the model version routed to")
    shadow: bool = Field(default=False, description="a mirrored copy whose answer is not used")
    _parts = model_validator(mode="after")(_text_is_its_parts)


class HoldTask(Envelope):
    """Search the supplier with validated params, pick the best offer, hold it. No model call."""

    kind: Literal["hold"] = "hold"
    domain: Domain
    params: DomainRequest
    hold_key: str = Field(description="idempotency key of the hold: the same key, one hold")


class ConfirmTask(Envelope):
    """Book a held offer (the saga's pivot). Retried until it succeeds."""

    kind: Literal["confirm"] = "confirm"
    domain: Domain
    hold_id: str
    idempotency_key: str


class CancelTask(Envelope):
    """Release the hold placed with `hold_key` — valid even before that hold exists."""

    kind: Literal["cancel"] = "cancel"
    domain: Domain
    hold_key: str
    idempotency_key: str


class ResolveTask(Envelope):
    """Ask the LLM tier to settle what a micro-SLM could not (`task.llm.resolve`).

    It carries the failed attempt and why it failed, and what the trip's other steps already
    know (a flight's destination settles "a hotel there"). `domain` None is work no micro-SLM
    covers at all (reason `no_model`): the tier records it and declines.
    """

    kind: Literal["resolve"] = "resolve"
    domain: Domain | None
    text: RequestText
    text_parts: TextParts = ()
    reference_date: ReferenceDate
    reason: EscalationReason
    attempt: dict[str, Any] | None = None
    errors: tuple[Problem, ...] = ()
    known: dict[Domain, DomainRequest] = Field(default_factory=dict)
    unsupported: tuple[str, ...] = Field(default=(), description="for no_model: what was asked")
    _parts = model_validator(mode="after")(_text_is_its_parts)


class RouteQuery(Frozen):
    """Ask the LLM tier which domains a request involves (`llm.route`, request/reply): the
    router was unsure (reason `ambiguous`). `slm` is what the router found, as a hint."""

    trip_id: str
    text: RequestText
    slm: tuple[str, ...] = Field(default=(), description="the labels the router was sure of")
    unsure: tuple[str, ...] = Field(default=(), description="labels in its uncertainty band")
    attempt: int = Field(default=0, ge=0, description="0 for the request, n after n answers")


class RouteAnswer(Frozen):
    """The LLM tier's routing decision, checked: labels from the known sets only."""

    kind: Literal["route_answer"] = "route_answer"
    trip_id: str
    decided: bool = Field(description="a valid answer naming at least one label")
    domains: tuple[Domain, ...] = ()
    unsupported: tuple[UnsupportedWork, ...] = ()
    errors: tuple[Problem, ...] = ()


def parts_of(task: ExtractTask | ResolveTask) -> tuple[str, ...]:
    """The parts of a task's text (the whole text when it was sent as one)."""
    return task.text_parts or (task.text,)


AnyTask = ExtractTask | HoldTask | ConfirmTask | CancelTask | ResolveTask
Task = Annotated[AnyTask, Field(discriminator="kind")]
TASK: TypeAdapter[AnyTask] = TypeAdapter(Task)


# --- replies from workers --------------------------------------------------------------------


class ModelCall(Frozen):
    """Who answered and what it cost: one record per model call."""

    tier: Tier
    engine: str
    model: str
    version: str
    adapter: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cost_usd: float = Field(default=0.0, description="tokens priced by the settings' price table")
    calls: int = Field(default=1, description="model calls behind this answer (candidates tried)")


class Extracted(ReplyEnvelope):
    """The domain request, grounded and validated."""

    kind: Literal["extracted"] = "extracted"
    domain: Domain
    params: DomainRequest
    confidence: float | None = Field(default=None, description="mean over value fields, 0..1")
    field_confidence: dict[str, float] = Field(default_factory=dict)
    dropped_fields: tuple[str, ...] = Field(
        default=(), description="values the model gave that the request text does not support"
    )
    call: ModelCall | None = None
    draft: dict[str, Any] | None = Field(
        default=None,
        description="the checked draft that grounded into `params`: the values as written",
    )
    text: str | None = Field(
        default=None,
        description="the text the draft was checked against, when it is not the command's: "
        "the LLM tier appends what the trip's other steps know",
    )


class NeedsEscalation(ReplyEnvelope):
    """The worker could not produce a request it trusts; the reason says why."""

    kind: Literal["needs_escalation"] = "needs_escalation"
    domain: Domain
    reason: EscalationReason
    attempt: dict[str, Any] | None = Field(
        default=None, description="the model's draft as emitted, for the next tier"
    )
    errors: tuple[Problem, ...] = ()
    call: ModelCall | None = None


class Held(ReplyEnvelope):
    """An offer is held for this trip until `expires_at`."""

    kind: Literal["held"] = "held"
    domain: Domain
    offer: Offer
    hold_id: str
    hold_key: str
    expires_at: datetime


class Confirmed(ReplyEnvelope):
    """The hold is booked."""

    kind: Literal["confirmed"] = "confirmed"
    domain: Domain
    hold_id: str
    confirmation_code: str
    total_price: float
    currency: str


class Cancelled(ReplyEnvelope):
    """The hold placed with `hold_key` is released (or never will be placed)."""

    kind: Literal["cancelled"] = "cancelled"
    domain: Domain
    hold_key: str
    already: bool = False


class Clarify(ReplyEnvelope):
    """The LLM tier cannot decide either: it asks the user this question."""

    kind: Literal["clarify"] = "clarify"
    domain: Domain
    question: str
    errors: tuple[Problem, ...] = ()
    call: ModelCall | None = None


class Declined(ReplyEnvelope):
    """The LLM tier recorded work no micro-SLM covers (`no_model`) and will not book it."""

    kind: Literal["declined"] = "declined"
    domain: Domain | None = None
    reason: EscalationReason = "no_model"
    message: str
    call: ModelCall | None = None


class Failed(ReplyEnvelope):
    """The command itself was unusable (malformed, wrong domain) or failed for good."""

    kind: Literal["failed"] = "failed"
    domain: Domain | None = None
    reason: str
    retryable: bool = False
    errors: tuple[Problem, ...] = ()


WorkerReply = (
    Extracted | NeedsEscalation | Clarify | Declined | Held | Confirmed | Cancelled | Failed
)
WorkerResult = Annotated[WorkerReply, Field(discriminator="kind")]
WORKER_RESULT: TypeAdapter[WorkerReply] = TypeAdapter(WorkerResult)


def replying_to(reply: WorkerReply, command_id: str) -> WorkerReply:
    """The reply, naming the command it answers."""
    return reply.model_copy(update={"command_id": command_id})


# --- the user, during a trip -------------------------------------------------------------------


class TripAnswer(Frozen):
    """The user's answer to a trip's question (`trip.input.<owner>.<trip_id>`)."""

    kind: Literal["trip_answer"] = "trip_answer"
    trip_id: str
    text: RequestText
    answer_id: str = Field(default_factory=new_message_id)


class TripCancel(Frozen):
    """The user calls the trip off (`trip.input.<owner>.<trip_id>`); honoured until the pivot."""

    kind: Literal["trip_cancel"] = "trip_cancel"
    trip_id: str
    reason: str = "cancelled by the user"


UserInput = Annotated[TripAnswer | TripCancel, Field(discriminator="kind")]
USER_INPUT: TypeAdapter[TripAnswer | TripCancel] = TypeAdapter(UserInput)
