"""A small async client for trips: submit, follow events, read the saga record."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from skiff_cli import stack
from skiff_contracts import subjects
from skiff_contracts.events import TRIP_EVENT, TripEvent, TripFinished
from skiff_contracts.messages import (
    SUBMIT_REPLY,
    SUBMIT_UNAVAILABLE,
    SubmitConflict,
    SubmitRejected,
    TripAccepted,
    TripAnswer,
    TripCancel,
    TripRequest,
)
from skiff_contracts.saga import SagaRecord, TripStatus, TripStatusQuery
from skiff_runtime.telemetry import inject_headers, producer_span

CONNECT_TIMEOUT_S = 5.0
IDLE_S = 15.0  # a trip's events silent this long: follow again with a new consumer


class StackUnreachable(Exception):
    """No NATS server answers at the URL (the message says how to start one), or one answers
    and does not let this identity in (the message says where credentials come from)."""

    def __init__(self, url: str, refused_as: str | None = None) -> None:
        if refused_as is None:
            message = f"no Skiff stack reachable at {url} — start one with `skiff up`"
        else:
            message = (
                f"no Skiff stack let `{refused_as}` in at {url}: nothing speaks NATS there, or "
                "the credentials are missing or wrong (run where `skiff up` ran, or set "
                "SKIFF_HOME, or SKIFF_NATS_USER and SKIFF_NATS_PASSWORD)"
            )
        super().__init__(message)
        self.url = url


class SubmitError(Exception):
    """The planner refused the request (`SubmitRejected`: its errors say why) or its id is
    another trip's (`SubmitConflict`)."""

    def __init__(self, rejected: SubmitRejected | SubmitConflict) -> None:
        if isinstance(rejected, SubmitConflict):
            super().__init__(f"client_request_id: {rejected.message}")
        else:
            super().__init__(
                "; ".join(f"{p.field or 'request'}: {p.message}" for p in rejected.errors)
            )
        self.rejected = rejected


class NotStoredYet(SubmitError):
    """The planner could not store the trip now (`SUBMIT_UNAVAILABLE`): retried, since the
    same `client_request_id` is one trip; a `SubmitError` once the retries are spent."""


async def probe(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """`StackUnreachable` unless something accepts a TCP connection at one of `url`'s servers
    (a refused port fails at once, where a NATS connection would keep retrying)."""
    for server in url.split(","):
        parts = urlsplit(server.strip() if "://" in server else f"nats://{server.strip()}")
        with contextlib.suppress(OSError, TimeoutError):
            connecting = asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222)
            _, writer = await asyncio.wait_for(connecting, timeout_s)
            writer.close()
            await writer.wait_closed()
            return
    raise StackUnreachable(url)


class SkiffClient:
    """Trips of one owner: the client identity the connection authenticated as. NATS lets it
    publish and read its own trips' subjects only (`skiff_runtime.permissions.client`)."""

    def __init__(self, connection: Client, owner: str) -> None:
        self.connection = connection
        self.owner = owner
        self.js = connection.jetstream()

    @classmethod
    async def connect(
        cls,
        url: str,
        timeout_s: float = CONNECT_TIMEOUT_S,
        *,
        identity: str = stack.CLI,
        home: Path | None = None,
    ) -> SkiffClient:
        """Connect with the `SKIFF_NATS_*` credentials if set, else as `identity` (a client:
        `cli` by default) with the password the local stack in `home` keeps for it
        (`stack.default_home()`).
        `StackUnreachable` when no server answers within `timeout_s`: the connection itself
        would keep trying forever, which is right for a service and a hang for a command."""
        await probe(url, timeout_s)
        quiet = logging.getLogger("nats.aio.client")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # each failed attempt would log a traceback
        try:
            connecting = stack.connect(url, identity=identity, home=home)
            return cls(await asyncio.wait_for(connecting, timeout_s), stack.acting_as(identity))
        except (TimeoutError, OSError) as error:  # the port answered: the login did not
            raise StackUnreachable(url, refused_as=stack.acting_as(identity)) from error
        finally:
            quiet.setLevel(level)

    async def __aenter__(self) -> SkiffClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.connection.close()

    async def submit(self, request: TripRequest, timeout_s: float = 45.0) -> TripAccepted:
        """Submit once per `client_request_id`; retried on timeouts (the planner de-duplicates).
        The wait covers the LLM tier deciding a route the router was unsure of.
        The trip's trace starts here, so retries stay in one trace."""
        subject = subjects.trip_submit(self.owner)
        with producer_span(subject, trip_id=request.trip_id) as headers:
            return await self._submit(request, headers, timeout_s)

    @retry(
        retry=retry_if_exception_type((NatsTimeout, NoRespondersError, NotStoredYet)),
        wait=wait_exponential_jitter(multiplier=0.5, max=5, jitter=0.5),
        stop=stop_after_delay(60),
        reraise=True,
    )
    async def _submit(
        self, request: TripRequest, headers: dict[str, str], timeout_s: float
    ) -> TripAccepted:
        reply = await self.connection.request(
            subjects.trip_submit(self.owner), request.model_dump_json().encode(),
            timeout=timeout_s, headers=headers,
        )  # fmt: skip
        answer = SUBMIT_REPLY.validate_json(reply.data)
        if isinstance(answer, SubmitRejected) and any(
            p.code == SUBMIT_UNAVAILABLE for p in answer.errors
        ):
            raise NotStoredYet(answer)
        if isinstance(answer, SubmitRejected | SubmitConflict):
            raise SubmitError(answer)
        return answer

    async def events(self, trip_id: str, timeout_s: float = 600.0) -> AsyncIterator[TripEvent]:
        """Every event of the trip from the first, in order, until it finishes."""
        seen = 0
        async with asyncio.timeout(timeout_s):
            while True:  # a new consumer after a silence (a NATS restart loses ephemeral ones)
                async with contextlib.aclosing(self._follow(trip_id)) as events:
                    async for event in events:
                        if event.seq <= seen:  # an event seen before (a new consumer replays)
                            continue
                        seen = event.seq
                        yield event
                        if isinstance(event, TripFinished):
                            return

    async def _follow(self, trip_id: str) -> AsyncGenerator[TripEvent]:
        """The trip's events from the first, through a named push consumer whose filter is in
        its create subject (the only kind a client may create: see the class), until `IDLE_S`
        of silence."""
        inbox = self.connection.new_inbox()
        subscription = await self.connection.subscribe(inbox)
        try:
            await self.js.add_consumer(
                subjects.STREAM_TRIP_EVENTS,
                ConsumerConfig(
                    name=f"{self.owner}-{uuid.uuid4().hex[:12]}",
                    filter_subject=subjects.trip_events(self.owner, trip_id),
                    deliver_subject=inbox,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=IDLE_S * 2,
                    mem_storage=True,
                ),
            )
            while True:
                try:
                    message = await subscription.next_msg(timeout=IDLE_S)
                except NatsTimeout:
                    return
                yield TRIP_EVENT.validate_json(message.data)
        finally:
            await subscription.unsubscribe()

    async def answer(self, trip_id: str, text: str) -> None:
        """Answer the trip's question; the same answer sent twice counts once."""
        message = TripAnswer(trip_id=trip_id, text=text)
        await self.js.publish(
            subjects.trip_input(self.owner, trip_id),
            message.model_dump_json().encode(),
            headers={**inject_headers(), "Nats-Msg-Id": f"{trip_id}:answer:{message.answer_id}"},
        )

    async def cancel(self, trip_id: str, reason: str = "cancelled by the user") -> None:
        """Call the trip off; honoured until the pivot (confirmation) starts."""
        message = TripCancel(trip_id=trip_id, reason=reason)
        await self.js.publish(
            subjects.trip_input(self.owner, trip_id),
            message.model_dump_json().encode(),
            headers={**inject_headers(), "Nats-Msg-Id": f"{trip_id}:cancel"},
        )

    async def saga(self, trip_id: str, timeout_s: float = 10.0) -> SagaRecord | None:
        """The trip's record, if it is one of this owner's trips (asked of the planner)."""
        reply = await self.connection.request(
            subjects.trip_status(self.owner),
            TripStatusQuery(trip_id=trip_id).model_dump_json().encode(),
            timeout=timeout_s,
        )
        return TripStatus.model_validate_json(reply.data).record
