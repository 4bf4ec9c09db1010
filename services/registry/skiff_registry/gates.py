"""Automatic rollout: which challenger moves on, and which is rolled back (pure).

A version registered with `rollout="auto"` is moved by the registry itself, one stage per
decision, when it beats the task's champion on the configured gates, and rolled back
(demoted to `candidate`, its rollout `halted`) when it does not:

1. **candidate → shadow**: its latest offline evaluation measured against the *current*
   champion (`Evaluation.baseline_model`) gains at least `offline_min_gain` on
   `offline_metric`, with a valid rate no lower than the champion's by more than
   `max_valid_drop`. An evaluation against another model is stale: nothing moves (a card's
   evaluations are fixed at registration, so a fresh one comes as a new version from
   `skiff flywheel run` or `evaluate` + `register`). An evaluation that does not gain halts it.
2. **shadow → canary** (at `canary_share`): once the shadow has answered `shadow_min_calls`
   mirrored requests in the window (and the champion has served as many), its live figures
   pass the comparison below.
3. **canary → champion**: once it has served `canary_min_calls` live requests in the
   window (the champion as many), its figures pass the comparison again.

The comparison, shadow or canary against the champion over the same rolling window: valid
rate not lower by more than `max_valid_drop`, escalation rate (all reasons) not higher by
more than `max_escalation_rise`, and p95 latency at most `max_p95_ratio` times the
champion's. Failing it after the minimum calls is a regression: the challenger is rolled
back. A challenger's window holds its shadow and live calls alike (both are the same model
on real traffic); the minimum for a canary counts live calls only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skiff_contracts.registry import Evaluation, MetricsWindow, ModelCard, ModelMetrics

StepAction = Literal["shadow", "canary", "champion", "demote"]


class Gates(BaseModel):
    """The thresholds of automatic rollout (`SKIFF_ROLLOUT__*`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    every_s: float = Field(default=30.0, gt=0, description="how often the registry decides")
    offline_metric: str = "slot_accuracy"
    offline_min_gain: float = 0.01
    shadow_min_calls: int = Field(default=100, ge=1)
    canary_min_calls: int = Field(default=100, ge=1)
    canary_share: float = Field(default=0.1, gt=0, le=1)
    max_valid_drop: float = Field(default=0.02, ge=0)
    max_escalation_rise: float = Field(default=0.02, ge=0)
    max_p95_ratio: float = Field(default=1.5, gt=0)


@dataclass(frozen=True)
class Step:
    """One decision: move `model_id` to a stage, or roll it back, and why (with the figures)."""

    model_id: str
    action: StepAction
    why: str
    share: float | None = None


def _latest_against(card: ModelCard, champion: str) -> Evaluation | None:
    against = [e for e in card.evaluations if e.baseline_model == champion]
    return max(against, key=lambda e: e.evaluated_at) if against else None


def _offline(card: ModelCard, champion: str, gates: Gates) -> Step | None:
    evaluation = _latest_against(card, champion)
    if evaluation is None:
        return None  # no evaluation against this champion yet: the flywheel's turn
    metric = gates.offline_metric
    mine, theirs = evaluation.metrics.get(metric), evaluation.baseline_metrics.get(metric)
    if mine is None or theirs is None:
        return Step(card.model_id, "demote", f"offline evaluation has no {metric}")
    figures = f"{metric} {mine:.3f} vs champion {theirs:.3f} on {evaluation.dataset_id}"
    valid, valid_base = (
        evaluation.metrics.get("valid_rate"),
        evaluation.baseline_metrics.get("valid_rate"),
    )
    if valid is not None and valid_base is not None and valid < valid_base - gates.max_valid_drop:
        return Step(card.model_id, "demote", f"offline valid rate {valid:.3f} < {valid_base:.3f}")
    if mine - theirs < gates.offline_min_gain:
        return Step(card.model_id, "demote", f"offline gain too small: {figures}")
    return Step(card.model_id, "shadow", f"offline: {figures}")


def escalation_total(window: MetricsWindow) -> float:
    return sum(window.escalation_rate.values())


def compare(challenger: MetricsWindow, champion: MetricsWindow, gates: Gates) -> list[str]:
    """The gates the challenger fails against the champion (empty: it passes)."""
    failed = []
    valid, valid_champion = challenger.valid_rate, champion.valid_rate
    if (
        valid is not None
        and valid_champion is not None
        and valid < valid_champion - gates.max_valid_drop
    ):
        failed.append(f"valid rate {valid:.3f} < champion {valid_champion:.3f}")
    mine, theirs = escalation_total(challenger), escalation_total(champion)
    if mine > theirs + gates.max_escalation_rise:
        failed.append(f"escalation rate {mine:.3f} > champion {theirs:.3f}")
    p95, p95_champion = challenger.latency.p95_ms, champion.latency.p95_ms
    if p95 is not None and p95_champion is not None and p95 > p95_champion * gates.max_p95_ratio:
        failed.append(f"p95 {p95:.0f} ms > {gates.max_p95_ratio} x champion {p95_champion:.0f} ms")
    return failed


def _live(
    card: ModelCard, window: MetricsWindow, champion: MetricsWindow, gates: Gates
) -> Step | None:
    shadow = card.status == "shadow"
    calls = window.shadow_calls if shadow else window.calls - window.shadow_calls
    needed = gates.shadow_min_calls if shadow else gates.canary_min_calls
    if calls < needed or champion.calls < needed:  # both sides on enough traffic
        return None
    stage = "shadow" if shadow else "canary"
    failed = compare(window, champion, gates)
    if failed:
        return Step(
            card.model_id, "demote", f"{stage} regressed over {calls} calls: " + "; ".join(failed)
        )
    summary = (
        f"{stage} passed over {calls} calls: valid {window.valid_rate or 0:.3f} "
        f"(champion {champion.valid_rate or 0:.3f}), escalations "
        f"{escalation_total(window):.3f} (champion {escalation_total(champion):.3f})"
    )
    if shadow:
        return Step(card.model_id, "canary", summary, share=gates.canary_share)
    return Step(card.model_id, "champion", summary)


def decide(
    cards: Iterable[ModelCard],
    champion: str | None,
    metrics: Mapping[str, ModelMetrics],
    gates: Gates,
) -> list[Step]:
    """The steps due for one task's automatic challengers, given its champion and metrics."""
    if not gates.enabled or champion is None:
        return []
    champion_metrics = metrics.get(champion)
    steps = []
    for card in sorted(cards, key=lambda c: c.model_id):
        if card.rollout != "auto" or card.model_id == champion:
            continue
        step: Step | None = None
        if card.status == "candidate":
            step = _offline(card, champion, gates)
        elif card.status in ("shadow", "canary") and champion_metrics is not None:
            mine = metrics.get(card.model_id)
            if mine is not None:
                step = _live(card, mine.window, champion_metrics.window, gates)
        if step is not None:
            steps.append(step)
    return steps
