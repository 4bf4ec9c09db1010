"""`skiff models install`: the shipped adapters and router become their tasks' champions.

The shipped router is registered as task `router.route` and promoted to champion when the
task has none (a retrained router promoted since is left in place).

Every stack (`skiff up`, `skiff demo`, docker compose, the Helm chart) runs this once the
registry answers: each shipped adapter (`skiff_models`) is registered with its card (the
adapter's path being where this installation put it) and promoted to champion. The base
model each worker registers stays registered: promotion makes it the challenger, the
baseline the shipped card's evaluation was measured against and the version a rollback
returns to. Idempotent: a shipped version that is already champion is left as it is.

Nothing is trained here: `make models` made the adapters, this only registers them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import typer
from rich.console import Console

from skiff_cli import stack
from skiff_cli.registry_cli import RegistryApi, RegistryUnavailable
from skiff_contracts.domains import DRAFTS, Domain, RouteLabels
from skiff_contracts.registry import Ack, ListModels, ModelList, Promote, RegisterModel
from skiff_extraction.router import router_card
from skiff_models import shipped_cards


class InstallRefused(Exception):
    """The registry would not take a shipped card (an incompatible schema, a conflict …)."""


@dataclass(frozen=True)
class Installed:
    domain: Domain | Literal["router"]
    model_id: str
    action: str  # "promoted" or "already champion"


async def install(api: RegistryApi, *, wait_for_base_s: float = 60.0) -> list[Installed]:
    """Register and promote every shipped adapter (see the module docstring).

    Waits up to `wait_for_base_s` for each task to have a champion first (the base model a
    worker registers at start-up), so the base is the champion the adapter replaces.
    """
    done = [await _install_router(api)]
    for domain, card in shipped_cards().items():
        await _wait_for_champion(api, card.task, wait_for_base_s)
        reply = await api.ask(
            RegisterModel(card=card, json_schema=DRAFTS[domain].model_json_schema())
        )
        if not isinstance(reply, Ack) or reply.card is None:
            raise InstallRefused(f"the registry refused {card.model_id}: {reply!r}")
        if reply.card.status == "champion":
            done.append(Installed(domain, card.model_id, "already champion"))
            continue
        why = "shipped champion: the release's fine-tuned adapter (make models)"
        promoted = await api.ask(Promote(model_id=card.model_id, to="champion", why=why))
        if not isinstance(promoted, Ack):
            raise InstallRefused(f"the registry would not promote {card.model_id}: {promoted!r}")
        done.append(Installed(domain, card.model_id, "promoted"))
    return done


async def _install_router(api: RegistryApi) -> Installed:
    """The shipped router: registered, and champion of `router.route` unless one is."""
    card = router_card()
    reply = await api.ask(RegisterModel(card=card, json_schema=RouteLabels.model_json_schema()))
    if not isinstance(reply, Ack) or reply.card is None:
        raise InstallRefused(f"the registry refused {card.model_id}: {reply!r}")
    listed = await api.ask(ListModels(task=card.task))
    if isinstance(listed, ModelList) and any(a.champion for a in listed.aliases):
        return Installed("router", card.model_id, "registered")
    why = "shipped router: the release's trained router (make router)"
    promoted = await api.ask(Promote(model_id=card.model_id, to="champion", why=why))
    if not isinstance(promoted, Ack):
        raise InstallRefused(f"the registry would not promote {card.model_id}: {promoted!r}")
    return Installed("router", card.model_id, "promoted")


async def _wait_for_champion(api: RegistryApi, task: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            listed = await api.ask(ListModels(task=task))
        except RegistryUnavailable:
            listed = None
        if isinstance(listed, ModelList) and any(a.champion for a in listed.aliases):
            return
        await asyncio.sleep(0.5)


def install_command(
    nats_url: Annotated[
        str | None, typer.Option(help="NATS URL (default: the local stack's)")
    ] = None,
    wait_s: Annotated[float, typer.Option(help="how long to wait for the registry")] = 120.0,
) -> None:
    """Register the shipped adapters and promote each to its task's champion (idempotent)."""
    console = Console()

    async def run() -> list[Installed]:
        deadline = time.monotonic() + wait_s
        while True:  # a fresh deployment: the registry may still be starting
            try:
                async with await RegistryApi.connect(
                    stack.resolve_nats_url(nats_url), identity=stack.FLYWHEEL
                ) as api:
                    return await install(api, wait_for_base_s=wait_s)
            except RegistryUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(2.0)

    try:
        installed = asyncio.run(run())
    except RegistryUnavailable as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    except InstallRefused as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    for done in installed:
        console.print(f"{done.domain}: {done.model_id} ({done.action})")
    if not installed:
        console.print("this build ships no adapters: the base models stay champions")
