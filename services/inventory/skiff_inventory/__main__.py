"""`python -m skiff_inventory`: settings → logging → catalog and store → serve."""

from __future__ import annotations

import asyncio

from skiff_inventory.app import create_app
from skiff_inventory.catalog import SupplierCatalog
from skiff_inventory.service import Inventory
from skiff_inventory.settings import InventorySettings
from skiff_inventory.store import SqliteStore
from skiff_runtime.logging import configure_logging
from skiff_runtime.service import serve


async def main() -> None:
    settings = InventorySettings()
    configure_logging("inventory", settings.log_level, settings.log_format)
    store = SqliteStore(settings.db_path, catalog_seed=settings.catalog_seed)
    inventory = Inventory(
        SupplierCatalog(settings.catalog_seed),
        store,
        hold_ttl_s=settings.hold_ttl_s,
        faults=settings.faults(),
    )
    app, broker = create_app(settings, inventory)
    try:
        await serve("inventory", settings, app, broker)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
