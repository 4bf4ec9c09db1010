"""What the flywheel's commands share: their options, the call log as the flywheel reads it,
and writing and showing a dataset."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from skiff_cli import stack
from skiff_flywheel.call_log import FLYWHEEL_IDENTITY, LogUnreachable, StreamSource, read_call_log
from skiff_flywheel.curate import RULES, Curated
from skiff_flywheel.dataset import DatasetExists, Manifest, write_dataset
from skiff_runtime.settings import ServiceSettings

console = Console()

Task = Annotated[str, typer.Option(help="'<domain>.extract', e.g. flights.extract")]
Output = Annotated[Path, typer.Option(help="the dataset directory to write")]
EvalShare = Annotated[
    float, typer.Option(min=0.0, max=0.99, help="share of groups held out for evaluation")
]
Version = Annotated[str | None, typer.Option(help="dataset version (default: the content hash)")]
Overwrite = Annotated[bool, typer.Option(help="replace a dataset already in --output")]
NatsUrl = Annotated[
    str | None,
    typer.Option(help="NATS URL (default: $SKIFF_NATS_URL, the local stack, or localhost)"),
]
Since = Annotated[
    datetime | None,
    typer.Option(help="only records from this time on (ISO 8601; UTC unless it says)"),
]
Home = Annotated[Path, typer.Option(help="the local stack's state (its flywheel password)")]
UNREACHABLE = 2


def stream_source(nats_url: str | None, home: Path) -> StreamSource:
    """The CALLS stream as the flywheel: credentials from the environment, else the local
    stack's `flywheel` password, else none (a server without authorization)."""
    settings = ServiceSettings()
    url = stack.resolve_nats_url(nats_url, home)
    if settings.nats_creds is not None or settings.nats_user:
        password = settings.nats_password.get_secret_value() if settings.nats_password else None
        return StreamSource(url, user=settings.nats_user, password=password,
                            creds=settings.nats_creds,
                            identity=settings.nats_user or FLYWHEEL_IDENTITY)  # fmt: skip
    password = stack.stored_password(home, FLYWHEEL_IDENTITY)
    if password is not None:
        return StreamSource(url, user=FLYWHEEL_IDENTITY, password=password)
    return StreamSource(url)


def read_log(
    source: StreamSource | Path, task: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    """The call log's records; an unreachable log exits with status 2."""
    try:
        return asyncio.run(read_call_log(source, task=task, since=since))
    except LogUnreachable as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(UNREACHABLE) from error


def write_or_exit(
    curated: Curated,
    output: Path,
    *,
    task: str,
    sources: Sequence[str],
    eval_share: float,
    version: str | None,
    overwrite: bool,
) -> Manifest:
    try:
        return write_dataset(output, curated.splits, task=task, sources=sources,
                             dropped=curated.dropped, eval_share=eval_share, rules=RULES,
                             version=version, overwrite=overwrite)  # fmt: skip
    except DatasetExists as error:
        console.print(f"[red]{error}[/red] (pass --overwrite to replace it)")
        raise typer.Exit(1) from error


def show_dataset(manifest: Manifest, output: Path) -> None:
    table = Table(title=f"{manifest.task} dataset {manifest.version} → {output}")
    table.add_column("")
    table.add_column("records", justify="right")
    for split, count in manifest.counts.items():
        table.add_row(split, str(count))
    for reason, count in manifest.dropped.items():
        table.add_row(f"dropped: {reason}", str(count))
    console.print(table)
    console.print(f"sha256 {manifest.sha256}")
