"""The worker's supplier port and its NATS adapter (core request/reply to the inventory).

Transport trouble (no responder yet, a timeout) is retried briefly with jittered backoff;
past that budget the call answers `InventoryFailed(unavailable, retryable=True)` and the
planner paces the next attempt — retries do not multiply across layers.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, TypeAdapter
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from skiff_contracts import subjects
from skiff_contracts.domains import Domain
from skiff_contracts.inventory import (
    CONFIRM_REPLY,
    HOLD_REPLY,
    RELEASE_REPLY,
    SEARCH_REPLY,
    BookingConfirmed,
    ConfirmHold,
    HoldPlaced,
    HoldReleased,
    InventoryFailed,
    InventoryOperation,
    OffersFound,
    PlaceHold,
    ReleaseHold,
    SearchOffers,
)
from skiff_runtime.telemetry import producer_span

R = TypeVar("R")


class Inventory(Protocol):
    async def search(
        self, domain: Domain, request: SearchOffers
    ) -> OffersFound | InventoryFailed: ...

    async def hold(self, domain: Domain, request: PlaceHold) -> HoldPlaced | InventoryFailed: ...

    async def confirm(
        self, domain: Domain, request: ConfirmHold
    ) -> BookingConfirmed | InventoryFailed: ...

    async def release(
        self, domain: Domain, request: ReleaseHold
    ) -> HoldReleased | InventoryFailed: ...


class NatsInventory:
    def __init__(
        self, connection: Client, *, timeout_s: float = 5.0, budget_s: float = 10.0
    ) -> None:
        self.connection = connection
        self.timeout_s = timeout_s
        self.budget_s = budget_s

    async def _call(
        self, domain: Domain, op: InventoryOperation, request: BaseModel, reply: TypeAdapter[Any]
    ) -> Any:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type((NoRespondersError, NatsTimeout)),
                wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
                stop=stop_after_delay(self.budget_s),
                reraise=True,
            ):
                with attempt, producer_span(subjects.inventory(domain, op)) as headers:
                    message = await self.connection.request(
                        subjects.inventory(domain, op),
                        request.model_dump_json().encode(),
                        timeout=self.timeout_s,
                        headers=headers,
                    )
        except (NoRespondersError, NatsTimeout) as error:
            return InventoryFailed(
                code="unavailable", message=f"inventory {op}: {error!r}", retryable=True
            )
        return reply.validate_json(message.data)

    async def search(self, domain: Domain, request: SearchOffers) -> OffersFound | InventoryFailed:
        result: OffersFound | InventoryFailed = await self._call(
            domain, "search", request, SEARCH_REPLY
        )
        return result

    async def hold(self, domain: Domain, request: PlaceHold) -> HoldPlaced | InventoryFailed:
        result: HoldPlaced | InventoryFailed = await self._call(domain, "hold", request, HOLD_REPLY)
        return result

    async def confirm(
        self, domain: Domain, request: ConfirmHold
    ) -> BookingConfirmed | InventoryFailed:
        result: BookingConfirmed | InventoryFailed = await self._call(
            domain, "confirm", request, CONFIRM_REPLY
        )
        return result

    async def release(self, domain: Domain, request: ReleaseHold) -> HoldReleased | InventoryFailed:
        result: HoldReleased | InventoryFailed = await self._call(
            domain, "release", request, RELEASE_REPLY
        )
        return result
