"""`skiff flywheel router-train` and `router-register`: the conversion loop for the router.

`router-train` trains a router version from the development data, the hand-written dev set
and, with `--call-log`, the routes the LLM tier decided (a `skiff flywheel export` of the
call log), measures it on the held-out sets and writes one file with its card. `router-
register` registers such a file as a candidate of `router.route`; `skiff registry promote`
then moves it through shadow and canary to champion, as for any task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skiff_cli.registry_cli import NatsUrl, finish, run, show_ack
from skiff_contracts.domains import RouteLabels
from skiff_contracts.registry import RegisterModel
from skiff_extraction.router import router_card
from skiff_flywheel.call_log import read_export
from skiff_flywheel.router_data import RouterSources, call_log_routes
from skiff_flywheel.router_training import RouterRecipe, build_router

console = Console()


def register(app: typer.Typer) -> None:
    """Add `router-train` and `router-register` to `app` (the `skiff flywheel` group)."""
    app.command("router-train")(train_command)
    app.command("router-register")(register_command)


def train_command(
    output: Annotated[Path, typer.Option(help="the router file to write (.npz)")],
    version: Annotated[str, typer.Option(help="its version, e.g. 2.1.0")],
    call_log: Annotated[
        Path | None, typer.Option(help="a call-log export: the LLM tier's routes are added")
    ] = None,
    data: Annotated[Path, typer.Option(help="holds sgd-intents/ and sgd-train/")] = Path(
        "../shared/data"
    ),
    devsets: Annotated[Path, typer.Option(help="the hand-written sets")] = Path(
        "libs/models/devsets"
    ),
) -> None:
    """Train, calibrate and measure a router version (the shipped recipe)."""
    routes = tuple(call_log_routes(read_export(call_log))) if call_log else ()
    sources = RouterSources(
        sgd_intents=data / "sgd-intents", sgd_train=data / "sgd-train",
        written=devsets / "router.jsonl", written_dev=devsets / "router-dev.jsonl",
        insurance=devsets / "insurance.jsonl", call_log=routes,
    )  # fmt: skip
    built = build_router(sources, {"shipped recipe": RouterRecipe()}, name="skiff-router",
                         version=version, progress=console.print)  # fmt: skip
    built.model.save(output)
    figures = {k: v for k, v in built.results[built.chosen].items() if k != "recipe"}
    console.print(json.dumps(figures, indent=1), highlight=False)
    console.print(f"{len(routes)} routes from the call log; wrote {output}")


def register_command(
    router_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    nats_url: NatsUrl = None,
) -> None:
    """Register a router file as a candidate of `router.route` (its path is its artifact)."""
    card = router_card(router_file.resolve())
    request = RegisterModel(card=card, json_schema=RouteLabels.model_json_schema())
    finish(run(nats_url, lambda api: api.ask(request)), False, show_ack)
