"""Automatic rollout: the gates decide (pure), and the registry applies their steps through
the same promote and rollback paths people use, each recorded with who and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from skiff_contracts.registry import (
    Evaluation,
    GetHistory,
    History,
    LatencyStats,
    MetricsWindow,
    ModelCard,
    ModelMetrics,
    Rollback,
    TaskAliases,
)
from skiff_registry.gates import Gates, Step, compare, decide
from skiff_registry.keys import card_key
from tests.fakes.registry import MemoryRegistry, registration

TASK = "flights.extract"
V1, V2 = (f"{TASK}/smollm2-lora@{v}" for v in ("1", "2"))
GATES = Gates(shadow_min_calls=50, canary_min_calls=40, canary_share=0.25)
AT = datetime(2026, 3, 1, tzinfo=UTC)


def window(
    calls: int,
    *,
    valid: float = 0.9,
    escalations: float = 0.1,
    p95: float = 100.0,
    shadow_calls: int = 0,
) -> MetricsWindow:
    return MetricsWindow(
        calls=calls, valid_rate=valid, escalation_rate={"ungrounded": escalations},
        latency=LatencyStats(p50_ms=p95 / 2, p95_ms=p95), shadow_calls=shadow_calls,
    )  # fmt: skip


def metrics(model_id: str, w: MetricsWindow) -> ModelMetrics:
    return ModelMetrics(model_id=model_id, total=w, window=w)


def evaluation(
    mine: float, theirs: float, baseline: str | None = V1, at: datetime = AT
) -> Evaluation:
    return Evaluation(
        dataset_id="sgd-flights@abc", metrics={"slot_accuracy": mine, "valid_rate": 0.9},
        baseline_model=baseline, baseline_metrics={"slot_accuracy": theirs, "valid_rate": 0.9},
        evaluated_at=at,
    )  # fmt: skip


def card(status: str = "candidate", rollout: str = "auto", *evals: Evaluation) -> ModelCard:
    base = registration(version="2").card
    return base.model_copy(
        update={"status": status, "rollout": rollout, "evaluations": tuple(evals)}
    )


# --- the decisions -------------------------------------------------------------------------


def test_a_candidate_that_beats_the_current_champion_offline_goes_to_shadow() -> None:
    [step] = decide([card("candidate", "auto", evaluation(0.71, 0.52))], V1, {}, GATES)
    assert step.action == "shadow" and "0.710 vs champion 0.520" in step.why


def test_only_the_latest_evaluation_against_the_current_champion_counts() -> None:
    stale = card("candidate", "auto", evaluation(0.9, 0.5, baseline="flights.extract/old@1"))
    assert decide([stale], V1, {}, GATES) == []
    later_loss = card(
        "candidate", "auto", evaluation(0.9, 0.5), evaluation(0.5, 0.52, at=AT + timedelta(1))
    )
    [step] = decide([later_loss], V1, {}, GATES)
    assert step.action == "demote" and "gain too small" in step.why


def test_manual_cards_the_champion_and_disabled_gates_decide_nothing() -> None:
    winner = evaluation(0.9, 0.5)
    assert decide([card("candidate", "manual", winner)], V1, {}, GATES) == []
    assert decide([card("candidate", "auto", winner)], None, {}, GATES) == []
    assert decide([card("candidate", "auto", winner)], V1, {}, Gates(enabled=False)) == []
    champion = card("champion", "auto", winner).model_copy(update={"model_id": V1})
    assert decide([champion], V1, {}, GATES) == []


def test_a_shadow_waits_for_its_minimum_then_passes_to_canary_at_the_configured_share() -> None:
    live = {V1: metrics(V1, window(500))}
    few = {**live, V2: metrics(V2, window(49, shadow_calls=49))}
    assert decide([card("shadow")], V1, few, GATES) == []
    enough = {**live, V2: metrics(V2, window(50, valid=0.95, escalations=0.05, shadow_calls=50))}
    [step] = decide([card("shadow")], V1, enough, GATES)
    assert step.action == "canary" and step.share == 0.25 and "over 50 calls" in step.why
    # A champion seen on a handful of calls decides nothing either way.
    thin = {V1: metrics(V1, window(3, valid=1.0)), V2: enough[V2]}
    assert decide([card("shadow")], V1, thin, GATES) == []


def test_a_canary_counts_live_calls_only_and_is_rolled_back_when_it_regresses() -> None:
    live = {V1: metrics(V1, window(500, escalations=0.10))}
    shadow_era = {**live, V2: metrics(V2, window(80, escalations=0.3, shadow_calls=50))}
    assert decide([card("canary")], V1, shadow_era, GATES) == []  # 30 live calls: not yet
    regressed = {**live, V2: metrics(V2, window(100, escalations=0.3, shadow_calls=50))}
    [step] = decide([card("canary")], V1, regressed, GATES)
    assert step.action == "demote"
    assert "canary regressed over 50 calls" in step.why and "escalation rate 0.300" in step.why
    better = {**live, V2: metrics(V2, window(100, escalations=0.05, shadow_calls=50))}
    assert [s.action for s in decide([card("canary")], V1, better, GATES)] == ["champion"]


@pytest.mark.parametrize(
    ("challenger", "failure"),
    [
        (window(100, valid=0.80), "valid rate 0.800 < champion 0.900"),
        (window(100, escalations=0.2), "escalation rate 0.200 > champion 0.100"),
        (window(100, p95=151.0), "p95 151 ms > 1.5 x champion 100 ms"),
    ],
)
def test_each_live_gate_can_fail_on_its_own(challenger: MetricsWindow, failure: str) -> None:
    assert compare(challenger, window(100), GATES) == [failure]
    assert compare(window(100, valid=0.89, escalations=0.11, p95=150.0), window(100), GATES) == []


# --- the registry applying them ------------------------------------------------------------


async def put_metrics(registry: MemoryRegistry, model_id: str, w: MetricsWindow) -> None:
    await registry.metric_table.put(card_key(model_id), metrics(model_id, w))


async def test_the_registry_takes_a_winner_from_candidate_to_champion_recording_each_move() -> None:
    registry = MemoryRegistry(GATES)
    await registry.register(registration(version="1"))
    challenger = registration(version="2")
    challenger = challenger.model_copy(
        update={"card": card("candidate", "auto", evaluation(0.7, 0.5))}
    )
    await registry.register(challenger)
    await put_metrics(registry, V1, window(500))

    [(step, _)] = await registry.auto_rollout()
    assert step.action == "shadow"
    assert await registry.auto_rollout() == []  # not enough shadow calls yet
    await put_metrics(registry, V2, window(60, shadow_calls=60))
    assert [s.action for s, _ in await registry.auto_rollout()] == ["canary"]
    stored = await registry.card_table.get(card_key(V2))
    assert stored is not None and stored.value.canary_share == 0.25
    await put_metrics(registry, V2, window(120, valid=0.93, shadow_calls=60))
    assert [s.action for s, _ in await registry.auto_rollout()] == ["champion"]
    assert await registry.auto_rollout() == []

    aliases = await registry.alias_table.get(TASK)
    assert aliases is not None and aliases.value == TaskAliases(
        task=TASK, champion=V2, challenger=V1
    )
    reply = await registry.handle(GetHistory(task=TASK))
    assert isinstance(reply, History)
    automatic = [(m.status, m.who) for m in reply.moves if m.who == "rollout"]
    assert [s for s, _ in automatic][:2] == ["shadow", "canary"] and "champion" in [
        s for s, _ in automatic
    ]


async def canary_of_an_automatic_challenger() -> MemoryRegistry:
    """V1 champion; V2, registered with `rollout: auto`, taken by the gates to canary."""
    registry = MemoryRegistry(GATES)
    await registry.register(registration(version="1"))
    challenger = registration(version="2").model_copy(
        update={"card": card("candidate", "auto", evaluation(0.7, 0.5))}
    )
    await registry.register(challenger)
    await put_metrics(registry, V1, window(500))
    await registry.auto_rollout()  # → shadow
    await put_metrics(registry, V2, window(60, shadow_calls=60))
    await registry.auto_rollout()  # → canary
    return registry


async def test_a_regressing_canary_is_rolled_back_to_candidate_and_its_rollout_halted() -> None:
    registry = await canary_of_an_automatic_challenger()
    await put_metrics(registry, V2, window(120, valid=0.6, shadow_calls=60))

    [(step, _)] = await registry.auto_rollout()
    assert step == Step(V2, "demote", step.why) and "valid rate 0.600" in step.why
    stored = await registry.card_table.get(card_key(V2))
    assert stored is not None
    assert (stored.value.status, stored.value.rollout) == ("candidate", "halted")
    aliases = await registry.alias_table.get(TASK)
    assert aliases is not None and aliases.value == TaskAliases(task=TASK, champion=V1)
    reply = await registry.handle(GetHistory(task=TASK))
    assert isinstance(reply, History)
    last = reply.moves[-1]
    assert (last.action, last.who, last.status, last.model_id) == (
        "rollback", "rollout", "candidate", V2,
    )  # fmt: skip
    assert await registry.auto_rollout() == []  # halted: it stays where it is


async def test_a_persons_rollback_of_an_automatic_champion_is_not_undone_by_the_gates() -> None:
    registry = await canary_of_an_automatic_challenger()
    await put_metrics(registry, V2, window(120, valid=0.93, shadow_calls=60))
    await registry.auto_rollout()  # → champion

    await registry.handle(Rollback(task=TASK, who="ops", why="bookings went wrong"))
    stored = await registry.card_table.get(card_key(V2))
    assert stored is not None and (stored.value.status, stored.value.rollout) == (
        "candidate", "halted",
    )  # fmt: skip
    # Its evaluation is against V1, the champion again: without the halt it would climb back.
    assert await registry.auto_rollout() == []
    aliases = await registry.alias_table.get(TASK)
    assert aliases is not None and aliases.value.champion == V1
