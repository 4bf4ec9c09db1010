"""Live metrics from a known sequence of call-log records: totals, window, redelivery, shadows,
accepted answers (SLM share, answer agreement), work no micro-SLM covers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from skiff_contracts.registry import ModelMetrics, Series
from skiff_registry.keys import metrics_key
from skiff_registry.metrics import Limits, LogRecord, TaskState
from skiff_registry.recorder import MetricsRecorder
from tests.fakes.registry import AT, MemoryTable, accepted, call

CHAMPION = "flights.extract/smollm2-lora@1"
SHADOW = "flights.extract/smollm2-lora@2"
LLM = "llm/llama-3.3-70b@2025-01"  # the LLM tier's model id, the same for every task
TASK = "flights.extract"


class Clock:
    def __init__(self) -> None:
        self.now = (AT + timedelta(seconds=10)).timestamp()

    def __call__(self) -> float:
        return self.now


def recorder(clock: Clock, **limits: float) -> MetricsRecorder:
    return MetricsRecorder(
        MemoryTable[TaskState](),
        MemoryTable[ModelMetrics](),
        MemoryTable[Series](),
        limits=Limits(**limits),  # type: ignore[arg-type]
        clock=clock,
    )


def live_sequence() -> list[LogRecord]:
    """10 champion calls at 10 … 100 ms: 8 answers, 2 escalations the LLM tier answered; the
    10 accepted answers (8 the SLM's, 2 the LLM tier's)."""
    records: list[LogRecord] = []
    for n in range(1, 11):
        reason = {9: "low_confidence", 10: "ungrounded"}.get(n)
        records.append(
            call(CHAMPION, n, latency_ms=10.0 * n, valid=reason is None, reason=reason,
                 digest=f"answer-{n}")
        )  # fmt: skip
    records += [
        call(LLM, n, tier="llm", latency_ms=2000.0, digest=f"llm-{n}", step="flights.resolve")
        for n in (9, 10)
    ]
    records += [accepted(n, digest=f"answer-{n}") for n in range(1, 9)]
    records += [accepted(n, answered_by="llm", digest=f"llm-{n}", model_id=LLM) for n in (9, 10)]
    return records


async def stored(rec: MetricsRecorder, model_id: str) -> ModelMetrics:
    row = await rec.metrics.get(metrics_key(TASK, model_id))
    assert row is not None, model_id
    return row.value


async def test_a_known_sequence_gives_known_numbers() -> None:
    rec = recorder(Clock())
    assert await rec.record(live_sequence()) == 22
    champion = await stored(rec, CHAMPION)
    for window in (champion.total, champion.window):
        assert window.calls == 10
        assert window.valid_rate == pytest.approx(0.8)
        assert window.escalation_rate == {"low_confidence": 0.1, "ungrounded": 0.1}
        assert window.latency.p50_ms == pytest.approx(50.0, rel=0.01)
        assert window.latency.p95_ms == pytest.approx(100.0, rel=0.01)
        assert (window.tokens_in, window.tokens_out) == (1000, 200)
        assert window.cost_usd == pytest.approx(0.01)
        assert window.shadow_calls == 0 and window.shadow_agreement is None
    assert (await stored(rec, LLM)).total.calls == 2


async def test_redelivered_records_are_not_counted_twice() -> None:
    rec = recorder(Clock())
    records = live_sequence()
    await rec.record(records[:7])
    assert await rec.record(records) == 15  # a batch redelivered with the rest
    assert await rec.record(records) == 0
    assert (await stored(rec, CHAMPION)).total.calls == 10
    points = (await rec.series.get(TASK)).value.points  # type: ignore[union-attr]
    assert [(p.answers, p.slm_calls, p.escalations) for p in points] == [(10, 10, 2)]


async def test_the_task_point_has_slm_share_escalation_rate_and_p95() -> None:
    rec = recorder(Clock())
    await rec.record(live_sequence())
    series = await rec.series.get(TASK)
    assert series is not None
    (point,) = series.value.points
    assert point.at.isoformat() == "2026-03-01T12:00:00+00:00" and point.interval_s == 60
    assert (point.answers, point.slm_accepted, point.llm_calls) == (10, 8, 2)
    assert point.slm_share == pytest.approx(8 / 10)  # 8 micro-SLM answers of 10 accepted
    assert point.escalation_rate == pytest.approx(2 / 10)
    assert point.p95_ms == pytest.approx(100.0, rel=0.01)  # micro-SLM calls only


async def test_the_slm_share_counts_accepted_answers_not_valid_calls() -> None:
    """A valid SLM answer the trip did not go on with (the user was asked, and the answer came
    after) is not an SLM answer; valid LLM candidates that lost are not answers either."""
    rec = recorder(Clock())
    await rec.record([
        call(CHAMPION, 1, digest="before"), call(CHAMPION, 1, digest="after", record_id="again"),
        accepted(1, answered_by="user", digest="after"),
        call(LLM, 2, tier="llm", digest="first", record_id="c0", step="flights.resolve"),
        call(LLM, 2, tier="llm", digest="second", record_id="c1", step="flights.resolve"),
        accepted(2, answered_by="llm", digest="second", model_id=LLM),
    ])  # fmt: skip
    (point,) = (await rec.series.get(TASK)).value.points  # type: ignore[union-attr]
    assert (point.answers, point.slm_accepted, point.slm_calls) == (2, 0, 2)
    assert point.slm_share == 0.0
    assert (await stored(rec, CHAMPION)).total.answer_agreement == pytest.approx(1 / 2)
    assert (await stored(rec, LLM)).total.answer_agreement == pytest.approx(1 / 2)


async def test_answer_agreement_per_model_in_either_order() -> None:
    rec = recorder(Clock())
    live = live_sequence()
    calls, answers = live[:12], live[12:]
    shadows = [
        call(SHADOW, 1, shadow=True, digest="answer-1", step="flights.shadow.smollm2-lora-2"),
        call(SHADOW, 2, shadow=True, digest="other", step="flights.shadow.smollm2-lora-2"),
        call(SHADOW, 3, shadow=True, valid=False, reason="low_confidence"),
        call(SHADOW, 9, shadow=True, digest="llm-9"),  # agrees with the LLM tier's answer
    ]
    await rec.record(answers[:5])  # accepted answers before their calls …
    await rec.record([*calls, shadows[0]])
    await rec.record(answers[5:])  # … and after
    await rec.record(shadows[1:])
    champion = await stored(rec, CHAMPION)
    for window in (champion.total, champion.window):
        assert window.answers_judged == 10
        assert window.answer_agreement == pytest.approx(8 / 10)  # its 2 escalations disagree
    llm = await stored(rec, LLM)
    assert (llm.total.answers_judged, llm.total.answer_agreement) == (2, 1.0)
    shadow = await stored(rec, SHADOW)
    assert shadow.total.answers_judged == 4
    assert shadow.total.answer_agreement == pytest.approx(2 / 4)
    # Shadow agreement compares with the live micro-SLM answer only, on steps it answered:
    # a shadow's step is `<domain>.shadow.<slug>`, matched on trip and task.
    assert shadow.total.shadow_agreement == pytest.approx(1 / 3)


async def test_work_no_micro_slm_covers_is_counted_under_its_own_task() -> None:
    rec = recorder(Clock())
    trains = [
        call(LLM, n, tier="llm", valid=False, reason="no_model", task="trains.extract",
             step="unsupported.resolve", latency_ms=0.0)
        for n in range(3)
    ]  # fmt: skip
    assert await rec.record(trains) == 3
    row = await rec.metrics.get(metrics_key("trains.extract", LLM))
    assert row is not None and row.value.total.calls == 3
    assert row.value.total.escalation_rate == {"no_model": 1.0}
    assert row.value.total.answers_judged == 0
    (point,) = (await rec.series.get("trains.extract")).value.points  # type: ignore[union-attr]
    assert (point.llm_calls, point.answers, point.slm_share) == (3, 0, None)
    state = (await rec.states.get("trains.extract")).value  # type: ignore[union-attr]
    assert state.judging == {}  # nothing waits for an answer that never comes


async def test_shadow_answers_are_compared_with_the_live_answer_in_either_order() -> None:
    rec = recorder(Clock())
    live = live_sequence()
    shadows = [
        call(SHADOW, 1, shadow=True, digest="answer-1", latency_ms=30.0),  # agrees
        call(SHADOW, 2, shadow=True, digest="something else", latency_ms=40.0),  # disagrees
        call(SHADOW, 3, shadow=True, valid=False, reason="low_confidence"),  # disagrees
        call(SHADOW, 9, shadow=True, digest="answer-9"),  # live escalated: not compared
    ]
    await rec.record([shadows[0]])  # before its live answer
    await rec.record(live)
    await rec.record(shadows[1:])  # after theirs
    shadow = await stored(rec, SHADOW)
    assert shadow.total.calls == 4 and shadow.total.shadow_calls == 4
    assert shadow.total.shadow_agreement == pytest.approx(1 / 3)
    assert shadow.window.shadow_agreement == pytest.approx(1 / 3)
    assert shadow.total.valid_rate == pytest.approx(3 / 4)
    champion = await stored(rec, CHAMPION)
    assert champion.total.calls == 10  # shadow calls count for the shadow only
    (point,) = (await rec.series.get(TASK)).value.points  # type: ignore[union-attr]
    assert point.answers == 10  # shadow answers are never used


async def test_the_window_moves_on_without_traffic_and_the_total_stays() -> None:
    clock = Clock()
    rec = recorder(clock)
    await rec.record(live_sequence())
    clock.now += 2 * 3600
    await rec.snapshot()
    champion = await stored(rec, CHAMPION)
    assert champion.total.calls == 10
    assert champion.window.calls == 0 and champion.window.valid_rate is None
    points = (await rec.series.get(TASK)).value.points  # type: ignore[union-attr]
    assert len(points) == 1  # the old point is history now, kept


async def test_state_stays_bounded() -> None:
    clock = Clock()
    rec = recorder(clock, dedupe_max=50, shadow_max=20, answer_max=30)
    for start in range(0, 400, 100):
        await rec.record([call(CHAMPION, n, digest=f"a{n}") for n in range(start, start + 100)])
        clock.now += 61
    state = (await rec.states.get(TASK)).value  # type: ignore[union-attr]
    assert len(state.seen) == 50 and len(state.waiting) == 20 and len(state.judging) == 30
    assert (await stored(rec, CHAMPION)).total.calls == 400
