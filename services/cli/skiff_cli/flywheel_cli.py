"""`skiff flywheel`: the call log, and the conversion loop's datasets curated from it or imported.

`export` writes the CALLS stream (both kinds of record: calls and accepted answers) to a
JSONL file; `curate` reads the stream, or such an export with `--input`; `import` reads
externally labelled data (the SGD development set). `curate` and `import` write a versioned
dataset directory: `train.jsonl`, `eval.jsonl` and `manifest.json` with counts and a content
hash. The stream is read as the `flywheel` NATS identity: `SKIFF_NATS_CREDS` or
`SKIFF_NATS_USER`/`SKIFF_NATS_PASSWORD` when set, else the local stack's (in `--home`).
Exit status: 0 written, 1 bad input (unknown task, unreadable source, dataset already
there), 2 NATS unreachable (or the stream unreadable as this identity).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from skiff_cli import flywheel_clusters, flywheel_loop, stack
from skiff_flywheel.call_log import (
    FLYWHEEL_IDENTITY,
    LogUnreachable,
    StreamSource,
    read_call_log,
    write_export,
)
from skiff_flywheel.curate import DEFAULT_EVAL_SHARE, RULES, Curated, UnknownTask, curate, domain_of
from skiff_flywheel.dataset import DatasetExists, Manifest, write_dataset
from skiff_flywheel.sgd import SOURCE as SGD_SOURCE
from skiff_flywheel.sgd import SgdFormatError, import_sgd
from skiff_runtime.settings import ServiceSettings

flywheel_app = typer.Typer(no_args_is_help=True, help=__doc__.splitlines()[0].split(": ", 1)[1])
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


def _read(
    source: StreamSource | Path, task: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    try:
        return asyncio.run(read_call_log(source, task=task, since=since))
    except LogUnreachable as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(UNREACHABLE) from error


def _write(
    curated: Curated,
    output: Path,
    *,
    task: str,
    source: str,
    eval_share: float,
    version: str | None,
    overwrite: bool,
) -> Manifest:
    try:
        return write_dataset(output, curated.splits, task=task, sources=[source],
                             dropped=curated.dropped, eval_share=eval_share, rules=RULES,
                             version=version, overwrite=overwrite)  # fmt: skip
    except DatasetExists as error:
        console.print(f"[red]{error}[/red] (pass --overwrite to replace it)")
        raise typer.Exit(1) from error


def _report(manifest: Manifest, output: Path) -> None:
    table = Table(title=f"{manifest.task} dataset {manifest.version} → {output}")
    table.add_column("")
    table.add_column("records", justify="right")
    for split, count in manifest.counts.items():
        table.add_row(split, str(count))
    for reason, count in manifest.dropped.items():
        table.add_row(f"dropped: {reason}", str(count))
    console.print(table)
    console.print(f"sha256 {manifest.sha256}")


@flywheel_app.command("export")
def export_command(
    output: Annotated[Path, typer.Option(help="the JSONL file to write")],
    task: Annotated[
        str | None, typer.Option(help="one task's records only, e.g. flights.extract")
    ] = None,
    since: Since = None,
    nats_url: NatsUrl = None,
    home: Home = stack.DEFAULT_HOME,
) -> None:
    """The CALLS stream (calls and accepted answers, in stream order) → a JSONL file."""
    if task is not None and "." not in task:
        console.print(f"[red]{task!r} is not a task: '<work>.extract', e.g. flights.extract[/red]")
        raise typer.Exit(1)
    records = _read(stream_source(nats_url, home), task, since)
    count = write_export(output, records)
    console.print(f"{count} records → {output}")


@flywheel_app.command("curate")
def curate_command(
    task: Task,
    output: Output,
    input_path: Annotated[
        Path | None,
        typer.Option("--input", help="a JSONL export (default: read the CALLS stream)"),
    ] = None,
    since: Since = None,
    nats_url: NatsUrl = None,
    home: Home = stack.DEFAULT_HOME,
    eval_share: EvalShare = DEFAULT_EVAL_SHARE,
    version: Version = None,
    overwrite: Overwrite = False,
) -> None:
    """Accepted answers (joined to their calls) → a deduplicated, split dataset."""
    try:
        domain_of(task)
    except UnknownTask as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    if input_path is not None and not input_path.is_file():
        console.print(f"[red]no such file: {input_path}[/red]")
        raise typer.Exit(1)
    source = input_path if input_path is not None else stream_source(nats_url, home)
    curated = curate(_read(source, task, since), task, eval_share=eval_share)
    manifest = _write(curated, output, task=task, source="calls", eval_share=eval_share,
                      version=version, overwrite=overwrite)  # fmt: skip
    _report(manifest, output)


@flywheel_app.command("import")
def import_command(
    task: Task,
    source: Annotated[Path, typer.Option(help="the sgd-train directory (or its train.jsonl)")],
    output: Output,
    eval_share: EvalShare = DEFAULT_EVAL_SHARE,
    version: Version = None,
    overwrite: Overwrite = False,
) -> None:
    """Externally labelled data (SGD) → a dataset marked with its source, split by dialogue."""
    try:
        curated = import_sgd(source, task, eval_share=eval_share)
    except (UnknownTask, SgdFormatError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    manifest = _write(curated, output, task=task, source=SGD_SOURCE, eval_share=eval_share,
                      version=version, overwrite=overwrite)  # fmt: skip
    _report(manifest, output)


flywheel_loop.register(flywheel_app)  # S6 `evaluate` and `register`
flywheel_clusters.register(flywheel_app)  # S3 `clusters` and S4 `candidates`
