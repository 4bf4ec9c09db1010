"""Durable publishing: JetStream with a `Nats-Msg-Id`, so a re-sent message is stored once."""

from __future__ import annotations

from faststream.nats import NatsBroker
from pydantic import BaseModel

MSG_ID_HEADER = "Nats-Msg-Id"


async def publish_durably(
    broker: NatsBroker,
    message: BaseModel,
    subject: str,
    *,
    stream: str,
    msg_id: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Publish to a stream and wait for its acknowledgement.

    FastStream does not set `Nats-Msg-Id` itself; without it JetStream cannot de-duplicate
    a message re-sent after a crash or a lost acknowledgement.
    """
    await broker.publish(
        message.model_dump_json().encode(),
        subject,
        headers={**(headers or {}), MSG_ID_HEADER: msg_id, "content-type": "application/json"},
        stream=stream,
    )
