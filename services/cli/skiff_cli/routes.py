"""`skiff route`: the router over texts, one JSON line per request.

Each line: `id`, `domains`, `unsupported`, `unsure` (labels in the uncertainty band), `by`
(`slm`, or `llm` when the router was unsure and `--llm` asked the stack's LLM tier), the
per-label `scores`, and `latency_ms` (the router's, and the tier's on top when it decided).
An input line that is not a JSON object with a string `text` gets an `error` line; the
others go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from nats.aio.client import Client

from skiff_contracts import subjects
from skiff_contracts.messages import RouteAnswer, RouteQuery
from skiff_extraction.llm_routing import after_llm
from skiff_extraction.router import Route, Router

Decide = Callable[[RouteQuery], Awaitable[RouteAnswer]]
ROUTE_TIMEOUT_S = 45.0


def asking(connection: Client) -> Decide:
    """The LLM tier's checked decision on a route, over `connection` (the operator's)."""

    async def decide(query: RouteQuery) -> RouteAnswer:
        reply = await connection.request(
            subjects.LLM_ROUTE, query.model_dump_json().encode(), timeout=ROUTE_TIMEOUT_S
        )
        return RouteAnswer.model_validate_json(reply.data)

    return decide


def input_rows(lines: Iterable[str]) -> Iterator[tuple[str, str | None, str | None]]:
    """(id, text, error) per non-empty line; the id is the line's `id`, else its number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield str(number), None, f"not JSON: {error.msg}"
            continue
        if not isinstance(row, dict):
            yield str(number), None, "not a JSON object"
            continue
        row_id = str(row.get("id", number))
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            yield row_id, None, "no `text` string"
            continue
        yield row_id, text, None


def line_of(row_id: str, route: Route) -> dict[str, Any]:
    return {
        "id": row_id, "domains": list(route.domains), "unsupported": list(route.unsupported),
        "unsure": list(route.unsure), "by": route.by, "scores": dict(route.scores),
        "latency_ms": round(route.latency_ms, 3),
    }  # fmt: skip


async def route_one(router: Router, row_id: str, text: str, decide: Decide | None) -> Route:
    """The router's route; when it is unsure and `decide` is given, the LLM tier's if it
    decided (else what the router was sure of)."""
    route = router.route(text)
    if route.decided or decide is None:
        return route
    started = time.perf_counter()
    answer = await decide(RouteQuery(trip_id=f"route-{row_id}", text=text, slm=route.labels,
                                     unsure=route.unsure))  # fmt: skip
    latency = route.latency_ms + (time.perf_counter() - started) * 1000
    return after_llm(route, answer, latency_ms=latency)
