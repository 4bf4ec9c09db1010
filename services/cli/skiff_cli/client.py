"""A small async client for trips: submit, follow events, read the saga record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from skiff_cli import stack
from skiff_contracts import subjects
from skiff_contracts.events import TRIP_EVENT, TripEvent, TripFinished
from skiff_contracts.messages import (
    SUBMIT_REPLY,
    RouteAnswer,
    RouteQuery,
    SubmitRejected,
    TripAccepted,
    TripAnswer,
    TripCancel,
    TripRequest,
)
from skiff_contracts.saga import SagaRecord
from skiff_runtime.telemetry import inject_headers, producer_span


class SubmitError(Exception):
    """The planner refused the request; `rejected.errors` says why."""

    def __init__(self, rejected: SubmitRejected) -> None:
        super().__init__("; ".join(f"{p.field or 'request'}: {p.message}" for p in rejected.errors))
        self.rejected = rejected


class SkiffClient:
    def __init__(self, connection: Client) -> None:
        self.connection = connection
        self.js = connection.jetstream()

    @classmethod
    async def connect(cls, url: str) -> SkiffClient:
        """Connect with the `SKIFF_NATS_*` credentials if set, else as the local stack's `cli`."""
        return cls(await stack.connect(url))

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
        with producer_span(subjects.TRIP_SUBMIT, trip_id=request.trip_id) as headers:
            return await self._submit(request, headers, timeout_s)

    @retry(
        retry=retry_if_exception_type((NatsTimeout, NoRespondersError)),
        wait=wait_exponential_jitter(multiplier=0.5, max=5, jitter=0.5),
        stop=stop_after_delay(60),
        reraise=True,
    )
    async def _submit(
        self, request: TripRequest, headers: dict[str, str], timeout_s: float
    ) -> TripAccepted:
        reply = await self.connection.request(
            subjects.TRIP_SUBMIT, request.model_dump_json().encode(), timeout=timeout_s,
            headers=headers,
        )  # fmt: skip
        answer = SUBMIT_REPLY.validate_json(reply.data)
        if isinstance(answer, SubmitRejected):
            raise SubmitError(answer)
        return answer

    async def events(self, trip_id: str, timeout_s: float = 600.0) -> AsyncIterator[TripEvent]:
        """Every event of the trip from the first, in order, until it finishes."""
        subscription = await self.js.subscribe(
            subjects.trip_events(trip_id),
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        seen = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await subscription.next_msg(timeout=timeout_s)
                    event = TRIP_EVENT.validate_json(message.data)
                    if event.seq <= seen:  # a re-sent event after the de-duplication window
                        continue
                    seen = event.seq
                    yield event
                    if isinstance(event, TripFinished):
                        return
        finally:
            await subscription.unsubscribe()

    async def decide_route(self, query: RouteQuery, timeout_s: float = 45.0) -> RouteAnswer:
        """The LLM tier's checked decision on a route (`skiff route --llm`)."""
        reply = await self.connection.request(
            subjects.LLM_ROUTE, query.model_dump_json().encode(), timeout=timeout_s
        )
        return RouteAnswer.model_validate_json(reply.data)

    async def answer(self, trip_id: str, text: str) -> None:
        """Answer the trip's question; the same answer sent twice counts once."""
        message = TripAnswer(trip_id=trip_id, text=text)
        await self.js.publish(
            subjects.trip_input(trip_id),
            message.model_dump_json().encode(),
            headers={**inject_headers(), "Nats-Msg-Id": f"{trip_id}:answer:{message.answer_id}"},
        )

    async def cancel(self, trip_id: str, reason: str = "cancelled by the user") -> None:
        """Call the trip off; honoured until the pivot (confirmation) starts."""
        message = TripCancel(trip_id=trip_id, reason=reason)
        await self.js.publish(
            subjects.trip_input(trip_id),
            message.model_dump_json().encode(),
            headers={**inject_headers(), "Nats-Msg-Id": f"{trip_id}:cancel"},
        )

    async def saga(self, trip_id: str) -> SagaRecord | None:
        kv = await self.js.key_value(subjects.BUCKET_SAGAS)
        try:
            entry = await kv.get(trip_id)
        except nats.js.errors.KeyNotFoundError:
            return None
        return SagaRecord.model_validate_json(entry.value) if entry.value else None
