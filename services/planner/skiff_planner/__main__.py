"""`python -m skiff_planner`: settings → logging → router → serve."""

from __future__ import annotations

import asyncio

from skiff_extraction.router import load_router
from skiff_planner.app import create_app
from skiff_planner.settings import PlannerSettings
from skiff_runtime.logging import configure_logging
from skiff_runtime.service import serve


async def main() -> None:
    settings = PlannerSettings()
    configure_logging("planner", settings.log_level, settings.log_format)
    router = load_router(settings.router_model_path)
    app, broker = create_app(settings, router)
    await serve("planner", settings, app, broker)


if __name__ == "__main__":
    asyncio.run(main())
