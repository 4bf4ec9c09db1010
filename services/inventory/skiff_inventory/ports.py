"""The ports the inventory logic needs: a transactional ledger of stock, holds and replies.

`Store.run(work)` runs `work(ledger)` as one transaction — all of it commits or none of it
does — and runs transactions one at a time. The rules (`holds`) are written against
`Ledger`; the SQLite adapter (`store`) implements both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from skiff_contracts.domains import Domain
from skiff_inventory.offers import Need

T = TypeVar("T")

HoldStatus = Literal["held", "confirmed", "released", "expired", "cancelled"]
Operation = Literal["hold", "confirm", "release"]


class StoreUnavailableError(Exception):
    """The store could not run a transaction (locked, disk error); nothing was changed."""


@dataclass(frozen=True)
class HoldRecord:
    hold_id: str
    domain: Domain
    offer_id: str
    offer_json: str
    status: HoldStatus
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class BookingRecord:
    hold_id: str
    confirmation_code: str
    total_price: float
    currency: str
    confirmed_at: float


@dataclass(frozen=True)
class StoredReply:
    fingerprint: str
    reply_json: str


@dataclass(frozen=True)
class Stock:
    """One resource's counters: `held + booked <= capacity`, always."""

    resource: str
    capacity: int
    held: int
    booked: int

    @property
    def free(self) -> int:
        return self.capacity - self.held - self.booked


class Ledger(Protocol):
    """One open transaction on the supplier's books. Times are Unix seconds."""

    # --- idempotency ----------------------------------------------------------------------
    def stored_reply(self, op: Operation, key: str) -> StoredReply | None: ...
    def store_reply(
        self, op: Operation, key: str, fingerprint: str, reply_json: str, now: float
    ) -> None: ...
    def count_confirm(self, key: str, now: float) -> int: ...
    def confirm_calls(self, key: str) -> int: ...

    # --- stock ----------------------------------------------------------------------------
    def free(self, needs: Iterable[Need]) -> dict[str, int]: ...
    def reserve(self, hold_id: str, need: Need) -> bool: ...
    def return_held(self, hold_id: str) -> None: ...
    def book_held(self, hold_id: str) -> None: ...
    def return_booked(self, hold_id: str) -> None: ...
    def stock(self, resource: str) -> Stock | None: ...
    def unbalanced(self) -> list[str]: ...

    # --- holds and bookings ---------------------------------------------------------------
    def insert_hold(self, hold: HoldRecord) -> None: ...
    def hold(self, hold_id: str) -> HoldRecord | None: ...
    def set_status(self, hold_id: str, status: HoldStatus, now: float) -> None: ...
    def due_holds(self, now: float) -> list[str]: ...
    def insert_booking(self, booking: BookingRecord) -> None: ...
    def booking(self, hold_id: str) -> BookingRecord | None: ...


class Store(Protocol):
    async def run(self, work: Callable[[Ledger], T]) -> T:
        """Run `work` as one transaction; `StoreUnavailableError` when it could not."""
        ...

    async def close(self) -> None: ...
