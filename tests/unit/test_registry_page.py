"""The governance page's rendering (pure): escaping, plots, empty tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from skiff_cli.registry_page import Overview, TaskOverview, line_chart, rate, render
from skiff_contracts.registry import AliasMove, ModelView, TaskAliases, TaskPoint
from tests.fakes.registry import registration

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TASK = "flights.extract"


def point(minute: int, share: float | None) -> TaskPoint:
    return TaskPoint(
        task=TASK, at=AT + timedelta(minutes=minute), interval_s=60, answers=10, slm_calls=10,
        slm_accepted=8, escalations=2, slm_share=share, escalation_rate=0.2, p95_ms=120.0,
    )  # fmt: skip


def overview(why: str = "fine") -> Overview:
    card = registration().card.model_copy(update={"status": "champion"})
    move = AliasMove(
        task=TASK, alias="champion", from_model=None, to_model=card.model_id, who="ana", why=why
    )
    flights = TaskOverview(
        task=TASK,
        aliases=TaskAliases(task=TASK, champion=card.model_id),
        models=[ModelView(card=card)],
        history=[move],
        points=[point(0, 0.5), point(1, None), point(2, 0.75)],
    )
    empty = TaskOverview(
        task="cars.extract", aliases=TaskAliases(task="cars.extract"), models=[], history=[],
        points=[],
    )  # fmt: skip
    return Overview(generated_at=AT, tasks=[empty, flights])


def test_text_from_people_is_escaped() -> None:
    page = render(overview(why="<script>alert(1)</script>"))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_shows_every_task_and_is_self_contained() -> None:
    page = render(overview())
    assert 'data-task="flights.extract"' in page and 'data-task="cars.extract"' in page
    assert "No model version registered" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_a_chart_plots_known_values_and_leaves_gaps_for_none() -> None:
    chart = line_chart(
        [(p.at, p.slm_share) for p in overview().tasks[1].points],
        metric="slm_share", title="SLM share", fmt=rate, y_max=1.0,
    )  # fmt: skip
    assert 'data-points="2"' in chart
    assert chart.count("<circle") == 2 and 'data-value="0.75"' in chart
    assert "no data yet" in line_chart([], metric="x", title="x", fmt=rate)
