"""`python -m skiff_registry`: settings → logging → app (adapters are built at start-up) → serve."""

from __future__ import annotations

import asyncio

from skiff_registry.app import create_app
from skiff_registry.settings import RegistrySettings
from skiff_runtime.logging import configure_logging
from skiff_runtime.service import serve


async def main() -> None:
    settings = RegistrySettings()
    configure_logging("registry", settings.log_level, settings.log_format)
    app, broker = create_app(settings)
    await serve("registry", settings, app, broker)


if __name__ == "__main__":
    asyncio.run(main())
