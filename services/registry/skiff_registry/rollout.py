"""Alias and status changes of a rollout, decided from what is stored (pure).

Each decision returns a `Change` (the task's new aliases, the statuses to write, the history
entries to append), `None` when nothing needs to change, or a `Refused`. Rules:

- `champion` alias ⇔ status `champion`. Promoting a model to champion moves the previous
  champion to the `challenger` alias with status `candidate`, warm for a rollback.
- Promoting to `shadow` or `canary` points the `challenger` alias at that model. Several
  models may be in shadow or canary at once (the planner routes by status); the alias names
  the latest.
- Rollback restores the champion before the current one: promotions push onto the task's
  lineage, rollbacks pop it, retired models are skipped.
- Retiring removes the model from every alias; a retired model never comes back.
- Demoting (an automatic rollback of a challenger that regressed) makes it a `candidate`
  again, takes it off the `challenger` alias and halts its automatic rollout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from skiff_contracts.registry import (
    AliasMove,
    AliasName,
    ModelCard,
    ModelStatus,
    MoveAction,
    Refused,
    RolloutMode,
    TaskAliases,
)

REGISTRY = "registry"  # `who` of the registry's own moves


@dataclass(frozen=True)
class Change:
    aliases: TaskAliases
    statuses: dict[str, ModelStatus]
    moves: tuple[AliasMove, ...]
    canary_share: dict[str, float] = field(default_factory=dict)
    rollout: dict[str, RolloutMode] = field(default_factory=dict)


def alias_moves(
    before: TaskAliases,
    after: TaskAliases,
    *,
    action: MoveAction,
    who: str,
    why: str,
    at: datetime,
    statuses: Mapping[str, ModelStatus],
) -> tuple[AliasMove, ...]:
    """One entry per alias that moved, each naming the status its new holder took."""
    moves = []
    for alias in ("champion", "challenger"):
        old, new = getattr(before, alias), getattr(after, alias)
        if old == new:
            continue
        subject = new if new is not None else old
        move = AliasMove(
            task=before.task, alias=alias, from_model=old, to_model=new, who=who, why=why,
            at=at, action=action, model_id=subject, status=statuses.get(subject or ""),
        )  # fmt: skip
        moves.append(move)
    return tuple(moves)


def _status_only(
    aliases: TaskAliases,
    model_id: str,
    status: ModelStatus,
    *,
    action: MoveAction,
    who: str,
    why: str,
    at: datetime,
) -> AliasMove:
    """A status change that moved no alias (the challenger stays what it was)."""
    return AliasMove(
        task=aliases.task, alias="challenger", from_model=aliases.challenger,
        to_model=aliases.challenger, who=who, why=why, at=at, action=action,
        model_id=model_id, status=status,
    )  # fmt: skip


def bootstrap(task: str, model_id: str, at: datetime) -> Change:
    """The first version registered for a task becomes its champion."""
    before = TaskAliases(task=task)
    after = TaskAliases(task=task, champion=model_id)
    statuses: dict[str, ModelStatus] = {model_id: "champion"}
    why = "first version registered for the task"
    moves = alias_moves(
        before, after, action="bootstrap", who=REGISTRY, why=why, at=at, statuses=statuses
    )
    return Change(after, statuses, moves)


def promote(
    aliases: TaskAliases,
    card: ModelCard,
    to: Literal["shadow", "canary", "champion"],
    share: float | None,
    *,
    who: str,
    why: str,
    at: datetime,
) -> Change | Refused | None:
    model = card.model_id
    if card.status == "retired":
        return Refused(code="retired", message=f"{model} is retired")
    if share is not None and to != "canary":
        return Refused(code="invalid", message="a share applies to a canary only")
    if to == "champion":
        if aliases.champion == model and card.status == "champion":
            return None
        return _crown(aliases, model, action="promote", who=who, why=why, at=at)
    if aliases.champion == model:
        return Refused(
            code="invalid",
            message=f"{model} is the champion; promote another version or roll back instead",
        )
    new_share = share if share is not None else card.canary_share
    if card.status == to and aliases.challenger == model and new_share == card.canary_share:
        return None
    statuses: dict[str, ModelStatus] = {model: to}
    after = aliases.model_copy(update={"challenger": model})
    moves = alias_moves(
        aliases, after, action="promote", who=who, why=why, at=at, statuses=statuses
    )
    if not moves:
        moves = (_status_only(aliases, model, to, action="promote", who=who, why=why, at=at),)
    shares = {model: new_share} if to == "canary" else {}
    return Change(after, statuses, moves, shares)


def _crown(
    aliases: TaskAliases, model: str, *, action: MoveAction, who: str, why: str, at: datetime
) -> Change:
    """`model` becomes champion; the champion it replaces becomes the challenger."""
    old = aliases.champion
    if old is not None:
        challenger: str | None = old
    else:
        challenger = None if aliases.challenger == model else aliases.challenger
    after = TaskAliases(task=aliases.task, champion=model, challenger=challenger)
    statuses: dict[str, ModelStatus] = {model: "champion"}
    if old is not None and old != model:
        statuses[old] = "candidate"
    moves = alias_moves(aliases, after, action=action, who=who, why=why, at=at, statuses=statuses)
    return Change(after, statuses, moves)


def lineage(history: Iterable[AliasMove]) -> list[str]:
    """The champions a rollback may return to, oldest first (the last is the current one)."""
    stack: list[str] = []
    for move in history:
        if move.alias != "champion" or move.from_model == move.to_model:
            continue
        if move.to_model is None:
            stack = [m for m in stack if m != move.from_model]
        elif move.action == "rollback" and move.to_model in stack:
            del stack[len(stack) - stack[::-1].index(move.to_model) :]
        elif not stack or stack[-1] != move.to_model:
            stack.append(move.to_model)
    return stack


def rollback(
    aliases: TaskAliases,
    history: Iterable[AliasMove],
    retired: set[str],
    automatic: set[str],
    *,
    who: str,
    why: str,
    at: datetime,
) -> Change | Refused:
    """Restore the previous champion. The one rolled back, if its rollout was automatic, is
    halted: its evaluation was against the champion now restored, so the gates would
    otherwise take it straight back up."""
    current = aliases.champion
    earlier = [m for m in lineage(history) if m != current and m not in retired]
    if not earlier:
        return Refused(
            code="not_found", message=f"{aliases.task} has no earlier champion to roll back to"
        )
    change = _crown(aliases, earlier[-1], action="rollback", who=who, why=why, at=at)
    if current is not None and current in automatic:
        change = replace(change, rollout={current: "halted"})
    return change


def retire(aliases: TaskAliases, card: ModelCard, *, who: str, why: str, at: datetime) -> Change:
    model = card.model_id
    update: dict[str, str | None] = {
        alias: None for alias in ("champion", "challenger") if getattr(aliases, alias) == model
    }
    after = aliases.model_copy(update=update)
    statuses: dict[str, ModelStatus] = {model: "retired"}
    moves = alias_moves(aliases, after, action="retire", who=who, why=why, at=at, statuses=statuses)
    if not moves:
        moves = (_status_only(aliases, model, "retired", action="retire", who=who, why=why, at=at),)
    return Change(after, statuses, moves)


def demote(aliases: TaskAliases, card: ModelCard, *, who: str, why: str, at: datetime) -> Change:
    """A shadow or canary that regressed goes back to `candidate`, its rollout halted."""
    model = card.model_id
    after = aliases.model_copy(update={"challenger": None} if aliases.challenger == model else {})
    statuses: dict[str, ModelStatus] = {model: "candidate"}
    moves = alias_moves(
        aliases, after, action="rollback", who=who, why=why, at=at, statuses=statuses
    )
    if not moves:
        moves = (
            _status_only(aliases, model, "candidate", action="rollback", who=who, why=why, at=at),
        )
    return Change(after, statuses, moves, rollout={model: "halted"})


def replay(task: str, history: Iterable[AliasMove]) -> TaskAliases:
    """The aliases the history says the task has."""
    held: dict[AliasName, str | None] = {"champion": None, "challenger": None}
    for move in history:
        held[move.alias] = move.to_model
    return TaskAliases(task=task, **held)
