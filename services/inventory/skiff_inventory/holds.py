"""The hold lifecycle as transactions on a `Ledger`: place, confirm, release, expire.

    held ──confirm──▶ confirmed ──release──▶ cancelled
     │ └─release──▶ released
     └──ttl passes──▶ expired

Each function runs inside one `Store.run` transaction and begins by expiring every hold
whose TTL has passed, so no operation ever sees a stale hold as live (the periodic sweep
only returns stock sooner when nobody calls).

Idempotency: a successful reply is stored under (operation, idempotency key) with a
fingerprint of the request, in the same transaction as its effects. The same key and request
again returns the stored reply and changes nothing; the same key with a different request is
refused. Failures are not stored: they changed nothing, so a retry is simply evaluated again
(a hold that failed `sold_out` may succeed once stock returns).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from skiff_contracts.domains import Domain
from skiff_contracts.inventory import (
    OFFER,
    OFFER_DOMAIN,
    BookingConfirmed,
    ConfirmHold,
    FailureCode,
    HoldPlaced,
    HoldReleased,
    InventoryFailed,
    PlaceHold,
    ReleaseHold,
)
from skiff_inventory.offers import Priced
from skiff_inventory.ports import BookingRecord, HoldRecord, Ledger, Operation

R = TypeVar("R", HoldPlaced, BookingConfirmed, HoldReleased)

_RETRYABLE: frozenset[FailureCode] = frozenset({"injected_failure", "unavailable"})


def failed(code: FailureCode, message: str) -> InventoryFailed:
    """A failure reply; only transient codes are retryable."""
    return InventoryFailed(code=code, message=message, retryable=code in _RETRYABLE)


def fingerprint(domain: Domain, request: PlaceHold | ConfirmHold | ReleaseHold) -> str:
    """What makes two calls with one key the same call: the domain and every other field."""
    fields = request.model_dump_json(exclude={"idempotency_key"})
    return hashlib.sha256(f"{domain}|{fields}".encode()).hexdigest()


def hold_id_for(key: str) -> str:
    """Hold ids follow from the placing key, so a retried placement names the same hold."""
    return "hold-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def confirmation_code(hold_id: str) -> str:
    digest = hashlib.sha256(f"confirm:{hold_id}".encode()).digest()
    return "SK" + base64.b32encode(digest).decode()[:8]


def expire_due(ledger: Ledger, now: float) -> int:
    """Expire every live hold past its TTL and give its stock back; how many expired."""
    due = ledger.due_holds(now)
    for hold_id in due:
        ledger.return_held(hold_id)
        ledger.set_status(hold_id, "expired", now)
    return len(due)


def _idempotent(
    ledger: Ledger,
    op: Operation,
    key: str,
    print_: str,
    parse: Callable[[str], R],
    now: float,
    work: Callable[[], R | InventoryFailed],
) -> R | InventoryFailed:
    stored = ledger.stored_reply(op, key)
    if stored is not None:
        # A hold key names the intent, not the offer: a retried search may pick another.
        if op != "hold" and stored.fingerprint != print_:
            return failed("invalid_request", f"idempotency key {key!r} was used for another {op}")
        return parse(stored.reply_json)
    reply = work()
    if not isinstance(reply, InventoryFailed):
        ledger.store_reply(op, key, print_, reply.model_dump_json(), now)
    return reply


def place(
    ledger: Ledger,
    domain: Domain,
    request: PlaceHold,
    priced: Priced | None,
    *,
    ttl_s: float,
    now: float,
    sold_out: bool = False,
) -> HoldPlaced | InventoryFailed:
    """Hold every unit the offer needs, or nothing (`sold_out`)."""
    expire_due(ledger, now)

    def work() -> HoldPlaced | InventoryFailed:
        hold_id = hold_id_for(request.idempotency_key)
        if (earlier := ledger.hold(hold_id)) is not None and earlier.status == "released":
            return failed("hold_released", f"hold key {request.idempotency_key!r} was released")
        if priced is None:
            return failed("not_found", f"no offer {request.offer_id!r}")
        if OFFER_DOMAIN[priced.offer.kind] != domain:
            return failed("invalid_request", f"{request.offer_id!r} is not a {domain} offer")
        free = ledger.free(priced.needs)
        if sold_out or any(free[need.resource] < need.quantity for need in priced.needs):
            return failed("sold_out", f"not enough left for {request.offer_id!r}")
        expires_at = now + ttl_s
        ledger.insert_hold(
            HoldRecord(
                hold_id=hold_id,
                domain=domain,
                offer_id=priced.offer.offer_id,
                offer_json=priced.offer.model_dump_json(),
                status="held",
                created_at=now,
                expires_at=expires_at,
            )
        )
        for need in priced.needs:
            if not ledger.reserve(hold_id, need):  # cannot happen after `free`; never oversell
                raise RuntimeError(f"stock of {need.resource} changed inside a transaction")
        return HoldPlaced(
            hold_id=hold_id,
            offer=priced.offer,
            expires_at=datetime.fromtimestamp(expires_at, UTC),
        )

    key, print_ = request.idempotency_key, fingerprint(domain, request)
    return _idempotent(ledger, "hold", key, print_, HoldPlaced.model_validate_json, now, work)


def confirm(
    ledger: Ledger, domain: Domain, request: ConfirmHold, *, now: float
) -> BookingConfirmed | InventoryFailed:
    """Book a live hold; the booking of an already confirmed hold is returned as it is."""
    ledger.count_confirm(request.idempotency_key, now)
    expire_due(ledger, now)

    def work() -> BookingConfirmed | InventoryFailed:
        hold = ledger.hold(request.hold_id)
        if hold is None or hold.domain != domain:
            return failed("not_found", f"no {domain} hold {request.hold_id!r}")
        if hold.status == "expired":
            return failed("hold_expired", f"hold {hold.hold_id!r} expired before confirmation")
        if hold.status in ("released", "cancelled"):
            return failed("hold_released", f"hold {hold.hold_id!r} was released")
        booking = ledger.booking(hold.hold_id)
        if booking is None:
            offer = OFFER.validate_json(hold.offer_json)
            booking = BookingRecord(
                hold_id=hold.hold_id,
                confirmation_code=confirmation_code(hold.hold_id),
                total_price=offer.total_price,
                currency=offer.currency,
                confirmed_at=now,
            )
            ledger.book_held(hold.hold_id)
            ledger.set_status(hold.hold_id, "confirmed", now)
            ledger.insert_booking(booking)
        return BookingConfirmed(
            hold_id=hold.hold_id,
            offer_id=hold.offer_id,
            confirmation_code=booking.confirmation_code,
            total_price=booking.total_price,
            currency=booking.currency,
        )

    key, print_ = request.idempotency_key, fingerprint(domain, request)
    return _idempotent(
        ledger, "confirm", key, print_, BookingConfirmed.model_validate_json, now, work
    )


def release(
    ledger: Ledger, domain: Domain, request: ReleaseHold, *, now: float
) -> HoldReleased | InventoryFailed:
    """Give a hold's stock back; a confirmed hold's booking is cancelled."""
    expire_due(ledger, now)

    hold_id = request.hold_id or hold_id_for(str(request.hold_key))

    def work() -> HoldReleased | InventoryFailed:
        hold = ledger.hold(hold_id)
        if hold is None and request.hold_key is not None:
            # Released before it was placed: spend the key so the placement, if it ever
            # arrives, fails instead of holding stock nobody will release.
            ledger.insert_hold(
                HoldRecord(
                    hold_id=hold_id,
                    domain=domain,
                    offer_id="",
                    offer_json="{}",
                    status="released",
                    created_at=now,
                    expires_at=now,
                )
            )
            return HoldReleased(hold_id=hold_id, already=True)
        if hold is None or hold.domain != domain:
            return failed("not_found", f"no {domain} hold {hold_id!r}")
        if hold.status == "held":
            ledger.return_held(hold.hold_id)
            ledger.set_status(hold.hold_id, "released", now)
        elif hold.status == "confirmed":
            ledger.return_booked(hold.hold_id)
            ledger.set_status(hold.hold_id, "cancelled", now)
        else:  # released, expired or cancelled: its stock is back already
            return HoldReleased(hold_id=hold.hold_id, already=True)
        return HoldReleased(hold_id=hold.hold_id, already=False)

    key, print_ = request.idempotency_key, fingerprint(domain, request)
    return _idempotent(ledger, "release", key, print_, HoldReleased.model_validate_json, now, work)
