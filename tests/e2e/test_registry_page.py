"""The governance page in a real headless Chromium: `skiff registry serve` against a real
registry with live traffic; what the browser shows must be what the registry's API says.

Needs Debian's Chromium and the `playwright` package (`bash infra/install-browser.sh`);
without them this test fails and says so — it never skips.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from nats.aio.client import Client

from skiff_contracts.registry import (
    GetHistory,
    GetSeries,
    History,
    ListModels,
    ModelList,
    Promote,
    Series,
    TaskPoint,
)
from skiff_runtime.nats_server import NatsServer, free_port
from tests.fakes.registry import accepted, call, registration
from tests.integration.registry_harness import RunningRegistry, ask, eventually, publish_calls

if TYPE_CHECKING:
    from playwright.async_api import Locator

pytestmark = [pytest.mark.nats, pytest.mark.browser]

TASK = "flights.extract"
V1, V2 = "flights.extract/smollm2-lora@1", "flights.extract/smollm2-lora@2"
LLM = "llm/llama-3.3-70b@1"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
CLI = "from skiff_cli.registry_cli import registry_app; registry_app(prog_name='skiff registry')"
INSTALL = "run `bash infra/install-browser.sh` (Debian chromium + the playwright package)"


@pytest.fixture
def chromium() -> str:
    """The Chromium to drive, checked first; a missing one (or a missing playwright) fails
    the test, loudly."""
    path = os.environ.get("SKIFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"Chromium not found at {path}: {INSTALL}", pytrace=False)
    if importlib.util.find_spec("playwright") is None:
        pytest.fail(f"the playwright package is missing: {INSTALL}", pytrace=False)
    return path


def traffic(now: datetime) -> list[Any]:
    """Four minutes of flights traffic, one bucket each: the champion gets better, a shadow
    mirrors every call, the LLM tier answers what the champion escalates; each trip's
    accepted answer is the champion's or the LLM tier's."""
    records: list[Any] = []
    for minute in range(4):
        at = now - timedelta(seconds=60 * (4 - minute))
        for n in range(10):
            trip = 100 * minute + n
            escalated = n < 4 - minute  # 4, 3, 2, 1 escalations
            records.append(
                call(V1, trip, at=at, latency_ms=40.0 + 10 * n + 5 * minute, valid=not escalated,
                     reason="low_confidence" if escalated else None, digest=f"a{trip}")
            )  # fmt: skip
            if escalated:
                records.append(call(LLM, trip, tier="llm", at=at, latency_ms=1800.0))
            records.append(
                accepted(trip, at=at, answered_by="llm" if escalated else "slm",
                         digest="d" if escalated else f"a{trip}")
            )  # fmt: skip
            records.append(
                call(V2, trip, at=at, shadow=True, latency_ms=30.0 + n,
                     digest=f"a{trip}" if n % 5 else "different")
            )  # fmt: skip
    return records


@pytest.fixture
async def governed(nats_server: NatsServer, fresh_layout: Client) -> AsyncIterator[Client]:
    """A registry with two flights versions (one in shadow) and live traffic recorded."""
    running = RunningRegistry(nats_server)
    await running.start()
    nc = fresh_layout
    await ask(nc, registration(version="1"))
    await ask(nc, registration(version="2"))
    await ask(nc, Promote(model_id=V2, to="shadow", who="ana", why="mirror live traffic"))
    records = traffic(datetime.now(UTC))
    await publish_calls(nc, records)

    async def recorded() -> bool:
        listed = await ask(nc, ListModels(task=TASK))
        calls = sum(v.metrics.total.calls for v in listed.models if v.metrics)
        series = await ask(nc, GetSeries(task=TASK))
        return bool(calls == 80 and len(series.points) == 4)

    await eventually(recorded, timeout=30)
    yield nc
    await running.stop()


@pytest.fixture
async def page_url(governed: Client, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[str]:
    """`skiff registry serve` in its own process. Its log goes to a file, not a pipe: a pipe
    nobody reads fills up, blocks the server's writes, and with them its SIGTERM handler."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLI, "serve", "--port", str(port), "--nats-url", nats_server.url,
            stdout=asyncio.subprocess.DEVNULL, stderr=output,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(150):
                try:
                    if (await client.get(url)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.returncode is not None:
                    pytest.fail(f"skiff registry serve exited: {log.read_text()}")
                await asyncio.sleep(0.2)
            else:
                pytest.fail("skiff registry serve did not answer in 30 s")
        yield url
    finally:
        process.terminate()
        await process.wait()


async def text(row: Locator, field: str) -> str:
    """What a model row's cell shows."""
    return str(await row.locator(f'td[data-field="{field}"]').inner_text())


async def value(row: Locator, field: str) -> float:
    """The exact number behind a model row's cell."""
    raw = await row.locator(f'td[data-field="{field}"]').get_attribute("data-value")
    return float(raw if raw is not None else "nan")


def rate_text(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


async def test_the_page_renders_and_its_numbers_are_the_registrys(
    chromium: str, governed: Client, page_url: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    listed: ModelList = await ask(governed, ListModels(task=TASK))
    history: History = await ask(governed, GetHistory(task=TASK))
    series: Series = await ask(governed, GetSeries(task=TASK))

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1200})
            response = await page.goto(page_url)
            assert response is not None and response.ok
            assert await page.title() == "Skiff governance"
            section = page.locator(f'section[data-task="{TASK}"]')
            await section.wait_for()
            champion = section.locator('[data-alias="champion"]')
            assert await champion.inner_text() == V1
            assert await section.locator('[data-alias="challenger"]').inner_text() == V2

            for view in listed.models:
                row = section.locator(f'tr[data-model="{view.card.model_id}"]')
                assert await text(row, "status") == view.card.status
                assert view.metrics is not None
                window = view.metrics.window
                assert float(await value(row, "calls_window")) == window.calls
                assert await text(row, "valid_rate") == rate_text(window.valid_rate)
                assert await value(row, "valid_rate") == pytest.approx(window.valid_rate)
                assert await value(row, "p95_ms") == pytest.approx(window.latency.p95_ms)
                assert await text(row, "shadow_agreement") == rate_text(window.shadow_agreement)
                assert await text(row, "answer_agreement") == rate_text(window.answer_agreement)
            shadow = next(v for v in listed.models if v.card.model_id == V2)
            assert shadow.metrics and shadow.metrics.window.shadow_agreement == pytest.approx(
                26 / 30
            )
            # Against the accepted answers, the escalations count against the champion too.
            champion_view = next(v for v in listed.models if v.card.model_id == V1)
            assert champion_view.metrics is not None
            assert champion_view.metrics.window.answer_agreement == pytest.approx(30 / 40)

            # One plotted point per snapshot, with the registry's values.
            for metric in ("slm_share", "escalation_rate", "p95_ms"):
                plot = section.locator(f'svg[data-plot="{metric}"]')
                expected = [getattr(p, metric) for p in series.points]
                assert int(await plot.get_attribute("data-points") or -1) == len(expected)
                values = await plot.locator("circle").evaluate_all(
                    "dots => dots.map(d => Number(d.dataset.value))"
                )
                assert values == pytest.approx(expected)
            shares = [p.slm_share for p in series.points]
            assert shares == pytest.approx([6 / 10, 7 / 10, 8 / 10, 9 / 10])

            rows = section.locator("table.history tbody tr")
            assert await rows.count() == len(history.moves) == 2
            assert "mirror live traffic" in await rows.first.inner_text()

            served = await page.request.get(page_url + "api/overview.json")
            assert served.ok
            overview = await served.json()
            (flights,) = [t for t in overview["tasks"] if t["task"] == TASK]
            assert [TaskPoint.model_validate(p) for p in flights["points"]] == list(series.points)
            by_id = {m["card"]["model_id"]: m for m in flights["models"]}
            for view in listed.models:
                served_metrics = by_id[view.card.model_id]["metrics"]
                assert view.metrics is not None
                assert served_metrics["window"] == view.metrics.window.model_dump(mode="json")
            await page.screenshot(path=str(tmp_path / "governance.png"), full_page=True)
        finally:
            await browser.close()
