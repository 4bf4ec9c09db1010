"""The inventory's edge without a server: bad bytes become typed replies; settings from env."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skiff_contracts.inventory import InventoryFailed, OffersFound
from skiff_inventory.app import answer
from skiff_inventory.catalog import SupplierCatalog
from skiff_inventory.service import Inventory
from skiff_inventory.settings import InventorySettings
from skiff_inventory.store import SqliteStore


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[Inventory]:
    store = SqliteStore(tmp_path / "edge.sqlite3", catalog_seed=7)
    yield Inventory(SupplierCatalog(7), store)
    await store.close()


@pytest.mark.parametrize(
    ("op", "body", "field"),
    [
        ("search", b"{not json", None),
        ("search", b"[]", None),
        ("hold", json.dumps({"offer_id": "x"}).encode(), "idempotency_key"),
        ("confirm", json.dumps({"idempotency_key": "k", "hold_id": ""}).encode(), "hold_id"),
        ("release", json.dumps({"idempotency_key": "k", "hold_id": "h", "x": 1}).encode(), "x"),
        (
            "search",
            json.dumps({"domain": "flights", "params": {"domain": "hotels"}}).encode(),
            None,
        ),
        (
            "search",
            json.dumps(
                {"domain": "flights", "params": {"domain": "flights", "passengers": 12}}
            ).encode(),
            "params.flights.passengers",
        ),
    ],
)
async def test_bad_requests_get_a_typed_invalid_request_reply(
    inventory: Inventory, op: str, body: bytes, field: str | None
) -> None:
    reply = await answer(inventory, "flights", op, body)  # type: ignore[arg-type]
    assert isinstance(reply, InventoryFailed)
    assert (reply.code, reply.retryable) == ("invalid_request", False)
    assert reply.errors
    if field is not None:
        assert field in {p.field for p in reply.errors}


async def test_a_good_search_body_is_answered(inventory: Inventory) -> None:
    body = {
        "kind": "search_offers",
        "domain": "insurance",
        "params": {"domain": "insurance", "trip_start": "2026-05-01"},
        "limit": 2,
    }
    reply = await answer(inventory, "insurance", "search", json.dumps(body).encode())
    assert isinstance(reply, OffersFound)
    assert len(reply.offers) == 2


def test_settings_read_sets_as_lists_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_FAIL_OPS", "hold, confirm")
    monkeypatch.setenv("SKIFF_SOLD_OUT_DOMAINS", '["hotels"]')
    monkeypatch.setenv("SKIFF_FAIL_RATE", "0.25")
    monkeypatch.setenv("SKIFF_DB_PATH", "/tmp/x.sqlite3")
    settings = InventorySettings()
    assert settings.fail_ops == {"hold", "confirm"}
    assert settings.sold_out_domains == {"hotels"}
    faults = settings.faults()
    assert (faults.rate, faults.phase, faults.latency_ms) == (0.25, "before", 0)
    assert settings.db_path == Path("/tmp/x.sqlite3")


def test_test_knobs_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SKIFF_FAIL_OPS", "SKIFF_SOLD_OUT_DOMAINS", "SKIFF_FAIL_RATE", "SKIFF_LATENCY_MS"):
        monkeypatch.delenv(name, raising=False)
    settings = InventorySettings()
    assert (settings.fail_rate, settings.latency_ms) == (0, 0)
    assert not settings.sold_out_domains
    assert settings.db_path == Path(".skiff/inventory.sqlite3")
    with pytest.raises(ValueError, match="fail_rate"):
        InventorySettings(fail_rate=1.5)
