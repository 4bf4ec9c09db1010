"""`skiff registry`: model cards, aliases and their history, live metrics, the governance page.

Every command is one request to the registry (`skiff.v1.registry.<op>`). A model is named by
its model id (`flights.extract/smollm2-lora@2`), or by anything that picks exactly one card:
its slug (`smollm2-lora-2`), its key (`flights.extract.smollm2-lora-2`) or `name@version`.
Exit status: 0 done, 1 refused by the registry, 2 registry unreachable.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Annotated, Any, Literal, TypeVar

import typer
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from skiff_cli import stack
from skiff_cli.registry_page import (
    Overview,
    create_web_app,
    load_overview,
    millis,
    money,
    rate,
    when,
)
from skiff_contracts import subjects
from skiff_contracts.registry import (
    REGISTRY_REPLY,
    Ack,
    GetHistory,
    GetModel,
    History,
    ListModels,
    ListSchemas,
    MetricsWindow,
    ModelList,
    ModelView,
    Promote,
    Refused,
    Retire,
    Rollback,
    SchemaList,
)

registry_app = typer.Typer(no_args_is_help=True, help=__doc__.splitlines()[0].split(": ", 1)[1])
console = Console()
R = TypeVar("R")
CONNECT_TIMEOUT_S = 10.0

NatsUrl = Annotated[
    str | None,
    typer.Option(help="NATS URL (default: $SKIFF_NATS_URL, the local stack, or localhost)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="the registry's reply as JSON")]
Reason = Annotated[str, typer.Option("--reason", help="why: recorded in the alias history")]


class RegistryUnavailable(Exception):
    """Nobody answered on the registry's subjects."""


class RegistryRefused(Exception):
    """The registry answered, and refused the change."""


def default_who(who: str | None) -> str:
    return who or os.environ.get("USER") or getpass.getuser()


class RegistryApi:
    """The registry's request/reply API over one NATS connection."""

    def __init__(self, connection: Client, caller: str, timeout_s: float = 5.0) -> None:
        """`caller`: the identity `connection` authenticated as (the registry's `who`)."""
        self.connection = connection
        self.caller = caller
        self.timeout_s = timeout_s

    @classmethod
    async def connect(
        cls, url: str, timeout_s: float = CONNECT_TIMEOUT_S, identity: str = stack.OPERATOR
    ) -> RegistryApi:
        """Connect as `identity` (the operator, or the flywheel for the conversion loop); a
        server that does not answer in `timeout_s` is unavailable (the connection itself would
        keep trying forever)."""
        quiet = logging.getLogger("nats.aio.client")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # each failed attempt would log a traceback
        try:
            connection = await asyncio.wait_for(stack.connect(url, identity=identity), timeout_s)
            return cls(connection, stack.acting_as(identity))
        except TimeoutError as error:
            raise RegistryUnavailable(f"no NATS server answers at {url}") from error
        finally:
            quiet.setLevel(level)

    async def __aenter__(self) -> RegistryApi:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.connection.close()

    async def ask(self, request: BaseModel) -> Any:
        operation = str(getattr(request, "kind", ""))
        subject = subjects.registry(operation, self.caller)
        try:
            reply = await self.connection.request(
                subject, request.model_dump_json().encode(), timeout=self.timeout_s
            )
        except (NoRespondersError, NatsTimeout) as error:
            raise RegistryUnavailable(f"no answer on {subject}") from error
        return REGISTRY_REPLY.validate_json(reply.data)

    async def resolve(self, model: str) -> str:
        """The model id `model` names (unchanged when it matches no card or several)."""
        if "/" in model:
            return model
        listed = await self.ask(ListModels())
        if not isinstance(listed, ModelList):
            return model
        matches = {
            view.card.model_id
            for view in listed.models
            if model
            in (
                view.card.slug,
                f"{view.card.task}.{view.card.slug}",
                f"{view.card.name}@{view.card.version}",
            )
        }
        return matches.pop() if len(matches) == 1 else model


def run(url: str | None, work: Callable[[RegistryApi], Awaitable[R]]) -> R:
    """Connect, do `work`, close; unreachable registry → exit 2."""

    async def go() -> R:
        async with await RegistryApi.connect(stack.resolve_nats_url(url)) as api:
            return await work(api)

    try:
        return asyncio.run(go())
    except RegistryUnavailable as error:
        console.print(f"[red]registry unavailable:[/] {error}")
        raise typer.Exit(2) from error


def finish(reply: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    """Print a reply; a refusal exits 1 with its problems."""
    if as_json:
        print(reply.model_dump_json(indent=2))
    elif isinstance(reply, Refused):
        console.print(f"[red]refused ({reply.code}):[/] {reply.message}", highlight=False)
        for problem in reply.problems:
            console.print(f"  {problem.field or '-'}: {problem.message}", highlight=False)
    else:
        show(reply)
    if isinstance(reply, Refused):
        raise typer.Exit(1)


# --- rendering --------------------------------------------------------------------------------


def _escalation(window: MetricsWindow) -> str:
    return rate(sum(window.escalation_rate.values())) if window.calls else "—"


def models_table(listed: ModelList) -> Table:
    aliases = {a.task: a for a in listed.aliases}
    table = Table(title="Model versions (metrics over the rolling window)")
    for head in (
        "task",
        "model",
        "status",
        "alias",
        "calls",
        "valid",
        "escalation",
        "p95",
        "agreement",
        "last seen",
    ):
        table.add_column(head, justify="right" if head in {"calls", "p95"} else "left")
    for view in listed.models:
        card, held = view.card, aliases.get(view.card.task)
        alias = ""
        if held is not None:
            alias = ", ".join(
                a for a in ("champion", "challenger") if getattr(held, a) == card.model_id
            )
        window = view.metrics.window if view.metrics else MetricsWindow()
        status = (
            f"{card.status} {rate(card.canary_share)}" if card.status == "canary" else card.status
        )
        table.add_row(
            card.task,
            card.model_id,
            status,
            alias,
            str(window.calls),
            rate(window.valid_rate),
            _escalation(window),
            millis(window.latency.p95_ms),
            rate(window.shadow_agreement),
            when(card.last_seen),
        )
    return table


def show_model(view: ModelView) -> None:
    card = view.card
    facts = Table.grid(padding=(0, 2))
    for name in (
        "model_id",
        "task",
        "status",
        "base_model",
        "adapter",
        "adapter_sha256",
        "engine",
        "endpoint",
        "prompt_version",
        "confidence_threshold",
        "owner",
    ):
        facts.add_row(name, str(getattr(card, name)))
    schema = card.output_schema
    facts.add_row("output schema", f"{schema.schema_id} v{schema.version} ({schema.sha256[:12]})")
    if card.status == "canary":
        facts.add_row("canary share", rate(card.canary_share))
    facts.add_row("created", when(card.created_at))
    facts.add_row("last seen", when(card.last_seen))
    for evaluation in card.evaluations:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in evaluation.metrics.items())
        facts.add_row(f"eval {evaluation.dataset_id}", scores)
    console.print(facts)
    if view.metrics is None:
        console.print("no calls recorded yet")
        return
    table = Table(title=f"Live metrics (window {view.metrics.window_s / 60:g} min)")
    table.add_column("")
    table.add_column("window", justify="right")
    table.add_column("total", justify="right")
    window, total = view.metrics.window, view.metrics.total
    rows: list[tuple[str, Callable[[MetricsWindow], str]]] = [
        ("calls", lambda w: str(w.calls)),
        ("valid rate", lambda w: rate(w.valid_rate)),
        ("escalation", _escalation),
        ("p50", lambda w: millis(w.latency.p50_ms)),
        ("p95", lambda w: millis(w.latency.p95_ms)),
        ("tokens in / out", lambda w: f"{w.tokens_in:,} / {w.tokens_out:,}"),
        ("cost", lambda w: money(w.cost_usd)),
        ("shadow calls", lambda w: str(w.shadow_calls)),
        ("shadow agreement", lambda w: rate(w.shadow_agreement)),
        ("answers judged", lambda w: str(w.answers_judged)),
        ("answer agreement", lambda w: rate(w.answer_agreement)),
    ]
    reasons = sorted(set(window.escalation_rate) | set(total.escalation_rate))
    for reason in reasons:
        rows.append((f"  {reason}", lambda w, r=reason: rate(w.escalation_rate.get(r, 0.0))))  # type: ignore[misc]
    for name, cell in rows:
        table.add_row(name, cell(window), cell(total))
    console.print(table)


def show_history(history: History) -> None:
    table = Table(title=f"Alias history of {history.task}")
    for head in ("when", "alias", "from", "to", "action", "who", "why"):
        table.add_column(head)
    for move in history.moves:
        table.add_row(
            when(move.at),
            move.alias,
            move.from_model or "—",
            move.to_model or "—",
            move.action or "",
            move.who,
            move.why,
        )
    console.print(table)


def show_ack(reply: Ack) -> None:
    if reply.move is None and reply.card is not None:
        console.print(f"no change: {reply.card.model_id} is {reply.card.status}")
        return
    if reply.card is not None:
        console.print(f"[green]{reply.card.model_id}[/] is now {reply.card.status}")
    if reply.move is not None:
        move = reply.move
        console.print(
            f"{move.task} {move.alias}: {move.from_model or '—'} → {move.to_model or '—'}"
        )


# --- commands ---------------------------------------------------------------------------------


@registry_app.command("list")
def list_models(
    task: Annotated[str | None, typer.Option(help="one task, e.g. flights.extract")] = None,
    as_json: AsJson = False,
    nats_url: NatsUrl = None,
) -> None:
    """Every model version: status, aliases, live metrics."""
    reply = run(nats_url, lambda api: api.ask(ListModels(task=task)))
    finish(reply, as_json, lambda r: console.print(models_table(r)))


@registry_app.command()
def show(model: str, as_json: AsJson = False, nats_url: NatsUrl = None) -> None:
    """One model card with its live metrics (window and total)."""

    async def work(api: RegistryApi) -> Any:
        return await api.ask(GetModel(model_id=await api.resolve(model)))

    finish(run(nats_url, work), as_json, show_model)


@registry_app.command()
def history(task: str, as_json: AsJson = False, nats_url: NatsUrl = None) -> None:
    """A task's alias history: every move, who made it and why."""
    finish(run(nats_url, lambda api: api.ask(GetHistory(task=task))), as_json, show_history)


@registry_app.command()
def promote(
    model: str,
    to: Annotated[Literal["shadow", "canary", "champion"], typer.Option("--to")],
    reason: Reason,
    share: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="a canary's share of trips")
    ] = None,
    as_json: AsJson = False,
    nats_url: NatsUrl = None,
) -> None:
    """Move a version to shadow, canary or champion (the champion it replaces stays warm as
    the challenger). The history records the identity that asked (`operator`)."""

    async def work(api: RegistryApi) -> Any:
        model_id = await api.resolve(model)
        request = Promote(model_id=model_id, to=to, why=reason, canary_share=share)
        return await api.ask(request)

    finish(run(nats_url, work), as_json, show_ack)


@registry_app.command()
def rollback(task: str, reason: Reason, as_json: AsJson = False, nats_url: NatsUrl = None) -> None:
    """Restore the task's previous champion."""
    request = Rollback(task=task, why=reason)
    finish(run(nats_url, lambda api: api.ask(request)), as_json, show_ack)


@registry_app.command()
def retire(model: str, reason: Reason, as_json: AsJson = False, nats_url: NatsUrl = None) -> None:
    """Retire a version for good: it leaves every alias and gets no more work."""

    async def work(api: RegistryApi) -> Any:
        model_id = await api.resolve(model)
        return await api.ask(Retire(model_id=model_id, why=reason))

    finish(run(nats_url, work), as_json, show_ack)


@registry_app.command()
def schemas(as_json: AsJson = False, nats_url: NatsUrl = None) -> None:
    """The stored output schemas: each task's contract and its compatible versions."""

    def show_schemas(reply: SchemaList) -> None:
        table = Table(title="Output schemas")
        for head in ("schema", "version", "sha256", "properties"):
            table.add_column(head)
        for entry in reply.schemas:
            properties = ", ".join(entry.json_schema.get("properties", {}))
            table.add_row(
                entry.ref.schema_id, str(entry.ref.version), entry.ref.sha256[:12], properties
            )
        console.print(table)

    finish(run(nats_url, lambda api: api.ask(ListSchemas())), as_json, show_schemas)


async def serve_page(url: str, host: str, port: int) -> None:
    """Serve the governance page until interrupted."""
    import uvicorn

    async with await RegistryApi.connect(url) as api:

        async def load() -> Overview:
            return await load_overview(api.ask)

        config = uvicorn.Config(create_web_app(load), host=host, port=port, log_level="warning")
        console.print(f"governance page on http://{host}:{port}/ (read-only; Ctrl-C stops it)")
        await uvicorn.Server(config).serve()


@registry_app.command()
def serve(
    port: Annotated[int, typer.Option(help="HTTP port")] = 8088,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    nats_url: NatsUrl = None,
) -> None:
    """The read-only governance page: champions, challengers, metrics, plots, history."""
    asyncio.run(serve_page(stack.resolve_nats_url(nats_url), host, port))
