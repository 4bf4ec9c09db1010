"""The SQLite adapter: the supplier's books in one file, WAL mode, every write transactional.

Concurrency: one connection, used by one transaction at a time behind an `asyncio.Lock`; each
transaction runs in a worker thread (`asyncio.to_thread`) so the event loop keeps serving
while SQLite waits on the disk. The service is one process per environment, so a single
writer is all SQLite needs to see; `BEGIN IMMEDIATE` and a busy timeout still keep an
operator's ad-hoc `sqlite3` session from breaking a transaction half-way.

`synchronous=FULL`: a confirmed booking survives a power cut, not only a process crash.
The counters carry CHECK constraints, so a bug can fail a transaction but never oversell.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from skiff_inventory.offers import Need
from skiff_inventory.ports import (
    BookingRecord,
    HoldRecord,
    HoldStatus,
    Ledger,
    Operation,
    Stock,
    StoredReply,
    StoreUnavailableError,
)

T = TypeVar("T")

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stock (
    resource TEXT PRIMARY KEY,
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    booked INTEGER NOT NULL DEFAULT 0 CHECK (booked >= 0),
    CHECK (held + booked <= capacity)
);
CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY,
    domain TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    offer_json TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('held', 'confirmed', 'released', 'expired', 'cancelled')),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_due ON holds (expires_at) WHERE status = 'held';
CREATE TABLE IF NOT EXISTS allocations (
    hold_id TEXT NOT NULL REFERENCES holds (hold_id),
    resource TEXT NOT NULL REFERENCES stock (resource),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (hold_id, resource)
);
CREATE INDEX IF NOT EXISTS allocations_resource ON allocations (resource);
-- One booking per hold, by construction: a second confirm cannot book twice.
CREATE TABLE IF NOT EXISTS bookings (
    hold_id TEXT PRIMARY KEY REFERENCES holds (hold_id),
    confirmation_code TEXT NOT NULL UNIQUE,
    total_price REAL NOT NULL,
    currency TEXT NOT NULL,
    confirmed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS replies (
    op TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    reply TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (op, idempotency_key)
);
CREATE TABLE IF NOT EXISTS confirm_calls (
    idempotency_key TEXT PRIMARY KEY,
    calls INTEGER NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL
);
"""


class SqliteLedger:
    """`Ledger` over an open SQLite transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    # --- idempotency ----------------------------------------------------------------------

    def stored_reply(self, op: Operation, key: str) -> StoredReply | None:
        row = self._db.execute(
            "SELECT fingerprint, reply FROM replies WHERE op = ? AND idempotency_key = ?",
            (op, key),
        ).fetchone()
        return None if row is None else StoredReply(row[0], row[1])

    def store_reply(
        self, op: Operation, key: str, fingerprint: str, reply_json: str, now: float
    ) -> None:
        self._db.execute(
            "INSERT INTO replies (op, idempotency_key, fingerprint, reply, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (op, key, fingerprint, reply_json, now),
        )

    def count_confirm(self, key: str, now: float) -> int:
        self._db.execute(
            "INSERT INTO confirm_calls (idempotency_key, calls, first_at, last_at)"
            " VALUES (?, 1, ?, ?) ON CONFLICT (idempotency_key)"
            " DO UPDATE SET calls = calls + 1, last_at = excluded.last_at",
            (key, now, now),
        )
        return self.confirm_calls(key)

    def confirm_calls(self, key: str) -> int:
        row = self._db.execute(
            "SELECT calls FROM confirm_calls WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    # --- stock ----------------------------------------------------------------------------

    def free(self, needs: Iterable[Need]) -> dict[str, int]:
        capacity = {need.resource: need.capacity for need in needs}
        if not capacity:
            return {}
        marks = ",".join("?" * len(capacity))
        used = dict(
            self._db.execute(
                f"SELECT resource, held + booked FROM stock WHERE resource IN ({marks})",
                tuple(capacity),
            ).fetchall()
        )
        return {resource: cap - int(used.get(resource, 0)) for resource, cap in capacity.items()}

    def reserve(self, hold_id: str, need: Need) -> bool:
        self._db.execute(
            "INSERT OR IGNORE INTO stock (resource, capacity) VALUES (?, ?)",
            (need.resource, need.capacity),
        )
        taken = self._db.execute(
            "UPDATE stock SET held = held + ? WHERE resource = ? AND held + booked + ? <= capacity",
            (need.quantity, need.resource, need.quantity),
        ).rowcount
        if taken != 1:
            return False
        self._db.execute(
            "INSERT INTO allocations (hold_id, resource, quantity) VALUES (?, ?, ?)",
            (hold_id, need.resource, need.quantity),
        )
        return True

    def _move(self, hold_id: str, held: int, booked: int) -> None:
        """Shift a hold's allocations between free, held and booked: each unit times a sign."""
        allocations = self._db.execute(
            "SELECT resource, quantity FROM allocations WHERE hold_id = ?", (hold_id,)
        ).fetchall()
        for resource, quantity in allocations:
            self._db.execute(
                "UPDATE stock SET held = held + ?, booked = booked + ? WHERE resource = ?",
                (held * quantity, booked * quantity, resource),
            )

    def return_held(self, hold_id: str) -> None:
        self._move(hold_id, held=-1, booked=0)

    def book_held(self, hold_id: str) -> None:
        self._move(hold_id, held=-1, booked=+1)

    def return_booked(self, hold_id: str) -> None:
        self._move(hold_id, held=0, booked=-1)

    def stock(self, resource: str) -> Stock | None:
        row = self._db.execute(
            "SELECT resource, capacity, held, booked FROM stock WHERE resource = ?", (resource,)
        ).fetchone()
        return None if row is None else Stock(*row)

    def unbalanced(self) -> list[str]:
        """Resources whose counters disagree with the live holds' and bookings' allocations."""
        rows = self._db.execute(
            """
            SELECT s.resource FROM stock s
            LEFT JOIN (
                SELECT a.resource,
                       SUM(CASE WHEN h.status = 'held' THEN a.quantity ELSE 0 END) AS held,
                       SUM(CASE WHEN h.status = 'confirmed' THEN a.quantity ELSE 0 END) AS booked
                FROM allocations a JOIN holds h ON h.hold_id = a.hold_id
                GROUP BY a.resource
            ) x ON x.resource = s.resource
            WHERE s.held != COALESCE(x.held, 0) OR s.booked != COALESCE(x.booked, 0)
            """
        ).fetchall()
        return [row[0] for row in rows]

    # --- holds and bookings ---------------------------------------------------------------

    def insert_hold(self, hold: HoldRecord) -> None:
        self._db.execute(
            "INSERT INTO holds (hold_id, domain, offer_id, offer_json, status, created_at,"
            " expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hold.hold_id,
                hold.domain,
                hold.offer_id,
                hold.offer_json,
                hold.status,
                hold.created_at,
                hold.expires_at,
                hold.created_at,
            ),
        )

    def hold(self, hold_id: str) -> HoldRecord | None:
        row = self._db.execute(
            "SELECT hold_id, domain, offer_id, offer_json, status, created_at, expires_at"
            " FROM holds WHERE hold_id = ?",
            (hold_id,),
        ).fetchone()
        return None if row is None else HoldRecord(*row)

    def set_status(self, hold_id: str, status: HoldStatus, now: float) -> None:
        self._db.execute(
            "UPDATE holds SET status = ?, updated_at = ? WHERE hold_id = ?",
            (status, now, hold_id),
        )

    def due_holds(self, now: float) -> list[str]:
        rows = self._db.execute(
            "SELECT hold_id FROM holds WHERE status = 'held' AND expires_at <= ?", (now,)
        ).fetchall()
        return [row[0] for row in rows]

    def insert_booking(self, booking: BookingRecord) -> None:
        self._db.execute(
            "INSERT INTO bookings (hold_id, confirmation_code, total_price, currency,"
            " confirmed_at) VALUES (?, ?, ?, ?, ?)",
            (
                booking.hold_id,
                booking.confirmation_code,
                booking.total_price,
                booking.currency,
                booking.confirmed_at,
            ),
        )

    def booking(self, hold_id: str) -> BookingRecord | None:
        row = self._db.execute(
            "SELECT hold_id, confirmation_code, total_price, currency, confirmed_at"
            " FROM bookings WHERE hold_id = ?",
            (hold_id,),
        ).fetchone()
        return None if row is None else BookingRecord(*row)


class SqliteStore:
    """`Store` on one SQLite file; created with its schema on first use."""

    def __init__(self, path: Path, *, catalog_seed: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = asyncio.Lock()
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.executescript(_SCHEMA)
            self._check_meta(catalog_seed)
        except Exception:
            self._db.close()
            raise

    def _check_meta(self, catalog_seed: int) -> None:
        """Stock rows hold capacities from one catalog: another seed must not reuse the file."""
        wanted = {"schema_version": SCHEMA_VERSION, "catalog_seed": str(catalog_seed)}
        for key, value in wanted.items():
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            (stored,) = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if stored != value:
                raise ValueError(f"{self.path} was built with {key}={stored}, not {value}")

    def _transact(self, work: Callable[[Ledger], T]) -> T:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreUnavailableError(str(error)) from error
        try:
            result = work(SqliteLedger(self._db))
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            self._db.execute("ROLLBACK")
            raise StoreUnavailableError(str(error)) from error
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return result

    async def run(self, work: Callable[[Ledger], T]) -> T:
        """Run `work` as one transaction in a worker thread, one transaction at a time."""
        async with self._lock:
            return await asyncio.to_thread(self._transact, work)

    async def close(self) -> None:
        async with self._lock:
            self._db.close()
