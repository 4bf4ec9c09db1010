"""Base classes shared by every Skiff message: frozen, strict about unknown fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_message_id() -> str:
    """A fresh random message id (commands use deterministic ids instead; see `command_id`)."""
    return uuid.uuid4().hex


class Frozen(BaseModel):
    """A value object: immutable, and unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(Frozen):
    """Fields every message on the bus carries. Trace context travels in NATS headers."""

    message_id: str = Field(default_factory=new_message_id)
    trip_id: str
    step: str = Field(description="the saga step this message belongs to, e.g. 'flights.extract'")
    occurred_at: datetime = Field(default_factory=utc_now)


class ReplyEnvelope(Envelope):
    """A worker's reply: it names the command it answers, and the planner takes a reply only
    for the command it sent last for that step (`command_id` is that command's `message_id`)."""

    command_id: str | None = Field(
        default=None, description="the message_id of the command this replies to"
    )
