"""The governance page: a read-only view of the registry, served by `skiff registry serve`.

Per task: the champion and its challengers with status and live metrics, plots over time of
the task's SLM share, escalation rate and p95 latency (inline SVG: the page fetches nothing
from anywhere), and the alias history. `/api/overview.json` serves the same numbers.

Everything comes from the registry's request/reply API (`ask`), the same answers the CLI
prints, so the page cannot disagree with the registry. The page renders from one
`Overview`; `render` is pure.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from skiff_contracts.base import utc_now
from skiff_contracts.domains import DOMAINS
from skiff_contracts.registry import (
    AliasMove,
    GetHistory,
    GetSeries,
    History,
    ListModels,
    ModelList,
    ModelView,
    Refused,
    Series,
    TaskAliases,
    TaskPoint,
)

Ask = Callable[[BaseModel], Awaitable[Any]]
ROLE_ORDER = {
    "champion": 0,
    "canary": 1,
    "shadow": 2,
    "challenger": 3,
    "candidate": 4,
    "retired": 5,
}


class TaskOverview(BaseModel):
    task: str
    aliases: TaskAliases
    models: list[ModelView]
    history: list[AliasMove]
    points: list[TaskPoint]


class Overview(BaseModel):
    generated_at: datetime
    tasks: list[TaskOverview]


class RegistryError(Exception):
    """The registry refused a read (or answered something unexpected)."""


def _expect(reply: Any, kind: type[Any]) -> Any:
    if isinstance(reply, Refused):
        raise RegistryError(f"{reply.code}: {reply.message}")
    if not isinstance(reply, kind):
        raise RegistryError(f"unexpected reply {type(reply).__name__}")
    return reply


def role(view: ModelView, aliases: TaskAliases) -> str:
    """What a model is to its task: its status, or `challenger` for a warm former champion."""
    status = view.card.status
    if status == "candidate" and aliases.challenger == view.card.model_id:
        return "challenger"
    return status


async def load_overview(ask: Ask) -> Overview:
    """Every task's cards, metrics, aliases, history and snapshot points, from the API."""
    listed: ModelList = _expect(await ask(ListModels()), ModelList)
    series: Series = _expect(await ask(GetSeries()), Series)
    aliases = {a.task: a for a in listed.aliases}
    tasks = sorted(
        {f"{d}.extract" for d in DOMAINS} | set(aliases) | {v.card.task for v in listed.models}
    )
    overviews = []
    for task in tasks:
        history: History = _expect(await ask(GetHistory(task=task)), History)
        held = aliases.get(task, TaskAliases(task=task))
        views = [v for v in listed.models if v.card.task == task]
        views.sort(key=lambda v: (ROLE_ORDER.get(role(v, held), 9), v.card.model_id))
        overviews.append(
            TaskOverview(
                task=task,
                aliases=held,
                models=views,
                history=list(history.moves),
                points=[p for p in series.points if p.task == task],
            )
        )
    return Overview(generated_at=utc_now(), tasks=overviews)


# --- formatting -----------------------------------------------------------------------------


def rate(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def millis(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def money(value: float) -> str:
    return f"${value:,.4f}"


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(field: str, text: str, value: object = None) -> str:
    raw = "" if value is None else f' data-value="{_e(value)}"'
    return f'<td data-field="{field}"{raw}>{_e(text)}</td>'


# --- plots ------------------------------------------------------------------------------------


def line_chart(
    points: Sequence[tuple[datetime, float | None]],
    *,
    metric: str,
    title: str,
    fmt: Callable[[float | None], str],
    y_max: float | None = None,
    width: int = 320,
    height: int = 120,
) -> str:
    """An inline SVG line chart of one metric over time (None values leave a gap)."""
    pad_left, pad_right, pad_top, pad_bottom = 44, 8, 18, 22
    known = [(t, v) for t, v in points if v is not None]
    head = (
        f'<svg class="chart" data-plot="{_e(metric)}" data-points="{len(known)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}"><title>{_e(title)}</title>'
        f'<text x="{pad_left}" y="12" class="chart-title">{_e(title)}</text>'
    )
    if not known:
        return head + f'<text x="{pad_left}" y="{height // 2}">no data yet</text></svg>'
    top = y_max if y_max is not None else max(v for _, v in known) * 1.1 or 1.0
    start = min(t for t, _ in known).timestamp()
    span = max(max(t for t, _ in known).timestamp() - start, 1.0)
    inner_w, inner_h = width - pad_left - pad_right, height - pad_top - pad_bottom

    def xy(t: datetime, v: float) -> tuple[float, float]:
        x = pad_left + inner_w * ((t.timestamp() - start) / span if len(known) > 1 else 0.5)
        y = pad_top + inner_h * (1 - min(v / top, 1.0))
        return round(x, 1), round(y, 1)

    coords = [xy(t, v) for t, v in known]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x}" cy="{y}" r="2.5" data-value="{v!r}"><title>{_e(when(t))}: '
        f"{_e(fmt(v))}</title></circle>"
        for (x, y), (t, v) in zip(coords, known, strict=True)
    )
    axes = (
        f'<line x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - pad_right}" '
        f'y2="{pad_top + inner_h}" class="axis"/>'
        f'<line x1="{pad_left}" y1="{pad_top}" x2="{pad_left}" y2="{pad_top + inner_h}" '
        'class="axis"/>'
        f'<text x="{pad_left - 4}" y="{pad_top + 4}" text-anchor="end">{_e(fmt(top))}</text>'
        f'<text x="{pad_left - 4}" y="{pad_top + inner_h}" text-anchor="end">{_e(fmt(0.0))}</text>'
        f'<text x="{pad_left}" y="{height - 6}">{_e(known[0][0].strftime("%H:%M"))}</text>'
        f'<text x="{width - pad_right}" y="{height - 6}" text-anchor="end">'
        f"{_e(known[-1][0].strftime('%H:%M'))}</text>"
    )
    polyline = f'<polyline points="{line}" class="line"/>'
    return head + axes + polyline + dots + "</svg>"


# --- the page ----------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #dde2ea; padding: .25rem .6rem; text-align: left; }
td[data-value] { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.role-champion { font-weight: 600; } .muted { color: #6b7585; }
.charts { display: flex; gap: 1rem; flex-wrap: wrap; }
.chart text { font-size: 10px; fill: #6b7585; } .chart .chart-title { fill: #1d2430; }
.chart .line { fill: none; stroke: #2f6fde; stroke-width: 1.5; } .chart circle { fill: #2f6fde; }
.chart .axis { stroke: #b8c0cc; }
"""


def _model_row(view: ModelView, aliases: TaskAliases) -> str:
    card, metrics = view.card, view.metrics
    window = metrics.window if metrics else None
    total = metrics.total if metrics else None
    escalation = sum(window.escalation_rate.values()) if window and window.calls else None
    by_reason = window.escalation_rate.items() if window else ()
    reasons = ", ".join(f"{reason} {rate(share)}" for reason, share in by_reason)
    who = role(view, aliases)
    cells = [
        f'<td data-field="role" class="role-{_e(who)}">{_e(who)}</td>',
        _cell("model_id", card.model_id),
        _cell("status", card.status),
        _cell("share", rate(card.canary_share) if card.status == "canary" else "—"),
        _cell("last_seen", when(card.last_seen)),
        _cell("calls_window", str(window.calls if window else 0), window.calls if window else 0),
        _cell("calls_total", str(total.calls if total else 0), total.calls if total else 0),
        _cell(
            "valid_rate",
            rate(window.valid_rate if window else None),
            window.valid_rate if window else None,
        ),
        _cell("escalation_rate", rate(escalation), escalation).replace(
            "<td ", f'<td title="{_e(reasons)}" ', 1
        ),
        _cell(
            "p50_ms",
            millis(window.latency.p50_ms if window else None),
            window.latency.p50_ms if window else None,
        ),
        _cell(
            "p95_ms",
            millis(window.latency.p95_ms if window else None),
            window.latency.p95_ms if window else None,
        ),
        _cell("tokens", f"{total.tokens_in:,} / {total.tokens_out:,}" if total else "—"),
        _cell(
            "cost_usd", money(total.cost_usd) if total else "—", total.cost_usd if total else None
        ),
        _cell(
            "shadow_agreement",
            rate(window.shadow_agreement if window else None),
            window.shadow_agreement if window else None,
        ),
        _cell(
            "answer_agreement",
            rate(window.answer_agreement if window else None),
            window.answer_agreement if window else None,
        ),
    ]
    return f'<tr data-model="{_e(card.model_id)}">{"".join(cells)}</tr>'


def _history_rows(moves: Sequence[AliasMove]) -> str:
    rows = []
    for move in reversed(moves):
        cells = [
            _cell("at", when(move.at)),
            _cell("alias", move.alias),
            _cell("from", move.from_model or "—"),
            _cell("to", move.to_model or "—"),
            _cell("action", move.action or "—"),
            _cell("status", f"{move.model_id} → {move.status}" if move.status else "—"),
            _cell("who", move.who),
            _cell("why", move.why),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return "".join(rows)


def _task_section(task: TaskOverview) -> str:
    aliases = task.aliases
    heads = (
        "role",
        "model",
        "status",
        "canary share",
        "last seen",
        "calls (window)",
        "calls (all)",
        "valid",
        "escalation",
        "p50",
        "p95",
        "tokens in / out (all)",
        "cost (all)",
        "shadow agreement",
        "answer agreement",
    )
    models = (
        "<table class='models'><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in heads)
        + "</tr></thead><tbody>"
        + "".join(_model_row(view, aliases) for view in task.models)
        + "</tbody></table>"
        if task.models
        else "<p class='muted'>No model version registered: every step goes to the LLM tier.</p>"
    )
    at = [p.at for p in task.points]
    charts = "".join(
        (
            line_chart(
                list(zip(at, [p.slm_share for p in task.points], strict=True)),
                metric="slm_share",
                title="SLM share",
                fmt=rate,
                y_max=1.0,
            ),
            line_chart(
                list(zip(at, [p.escalation_rate for p in task.points], strict=True)),
                metric="escalation_rate",
                title="escalation rate",
                fmt=rate,
                y_max=1.0,
            ),
            line_chart(
                list(zip(at, [p.p95_ms for p in task.points], strict=True)),
                metric="p95_ms",
                title="p95 latency (micro-SLM)",
                fmt=millis,
            ),
        )
    )
    history = (
        "<table class='history'><thead><tr><th>when</th><th>alias</th><th>from</th><th>to</th>"
        "<th>action</th><th>status</th><th>who</th><th>why</th></tr></thead><tbody>"
        + _history_rows(task.history)
        + "</tbody></table>"
        if task.history
        else "<p class='muted'>No alias has moved yet.</p>"
    )
    return (
        f'<section class="task" data-task="{_e(task.task)}"><h2>{_e(task.task)}</h2>'
        f'<p>champion: <b data-alias="champion">{_e(aliases.champion or "—")}</b> · '
        f'challenger: <b data-alias="challenger">{_e(aliases.challenger or "—")}</b></p>'
        f"{models}<div class='charts'>{charts}</div><h3>Alias history</h3>{history}</section>"
    )


def render(overview: Overview, *, refresh_s: int = 30) -> str:
    """The whole page, one self-contained HTML document."""
    window = next(
        (v.metrics.window_s for t in overview.tasks for v in t.models if v.metrics), 3600.0
    )
    sections = "".join(_task_section(task) for task in overview.tasks)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{refresh_s}'>"
        "<title>Skiff governance</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Skiff governance registry</h1>"
        f"<p class='muted'>Read-only. Generated {_e(when(overview.generated_at))}; "
        f"window metrics cover the last {window / 60:g} min; plots: one point per interval. "
        "Numbers as JSON: <a href='api/overview.json'>api/overview.json</a></p>"
        f"{sections}</body></html>"
    )


def create_web_app(load: Callable[[], Awaitable[Overview]]) -> Starlette:
    """The page at `/`, its numbers at `/api/overview.json`; GET only."""

    async def page(request: Request) -> Response:
        try:
            return HTMLResponse(render(await load()))
        except Exception as error:  # the registry is down or refused: say so, don't crash
            return HTMLResponse(
                f"<!doctype html><title>Skiff governance</title><p>registry unavailable: "
                f"{_e(error)}</p>",
                status_code=503,
            )

    async def data(request: Request) -> Response:
        try:
            return Response((await load()).model_dump_json(), media_type="application/json")
        except Exception as error:
            return JSONResponse({"error": str(error)}, status_code=503)

    return Starlette(routes=[Route("/", page), Route("/api/overview.json", data)])
