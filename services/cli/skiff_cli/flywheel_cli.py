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

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skiff_cli import (
    flywheel_clusters,
    flywheel_loop,
    flywheel_router,
    flywheel_run,
    flywheel_train,
    stack,
)
from skiff_cli.flywheel_sources import (
    EvalShare,
    Home,
    NatsUrl,
    Output,
    Overwrite,
    Since,
    Task,
    Version,
    read_log,
    show_dataset,
    stream_source,
    write_or_exit,
)
from skiff_flywheel.call_log import write_export
from skiff_flywheel.curate import DEFAULT_EVAL_SHARE, UnknownTask, curate, domain_of
from skiff_flywheel.sgd import SOURCE as SGD_SOURCE
from skiff_flywheel.sgd import SgdFormatError, import_sgd

flywheel_app = typer.Typer(no_args_is_help=True, help=__doc__.splitlines()[0].split(": ", 1)[1])
console = Console()


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
    records = read_log(stream_source(nats_url, home), task, since)
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
    curated = curate(read_log(source, task, since), task, eval_share=eval_share)
    manifest = write_or_exit(curated, output, task=task, sources=["calls"], eval_share=eval_share,
                      version=version, overwrite=overwrite)  # fmt: skip
    show_dataset(manifest, output)


@flywheel_app.command("import")
def import_command(
    task: Task,
    output: Output,
    source: Annotated[
        Path | None,
        typer.Option(help="the sgd-train directory (or its train.jsonl): split by dialogue"),
    ] = None,
    train_only: Annotated[
        list[Path] | None,
        typer.Option(help="records in the same format that all go to train (generated ones)"),
    ] = None,
    eval_only: Annotated[
        list[Path] | None,
        typer.Option(help="records that all go to eval (a hand-written development set)"),
    ] = None,
    eval_share: EvalShare = DEFAULT_EVAL_SHARE,
    version: Version = None,
    overwrite: Overwrite = False,
) -> None:
    """Externally labelled data (SGD, generated, hand-written) → a dataset marked with its
    sources, SGD split by dialogue."""
    if source is None and not train_only and not eval_only:
        console.print("[red]nothing to import: give --source, --train-only or --eval-only[/red]")
        raise typer.Exit(1)
    try:
        curated = import_sgd(source, task, eval_share=eval_share, train_only=train_only or (),
                             eval_only=eval_only or ())  # fmt: skip
    except (UnknownTask, SgdFormatError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    sources = sorted({e.source for split in curated.splits.values() for e in split})
    manifest = write_or_exit(
        curated, output, task=task, sources=sources or [SGD_SOURCE], eval_share=eval_share,
        version=version, overwrite=overwrite,
    )  # fmt: skip
    show_dataset(manifest, output)


flywheel_clusters.register(flywheel_app)  # S3 `clusters` and S4 `candidates`
flywheel_train.register(flywheel_app)  # S5 `train`
flywheel_loop.register(flywheel_app)  # S6 `evaluate` and `register`
flywheel_run.register(flywheel_app)  # S2-S6 in one turn
flywheel_router.register(flywheel_app)  # the router's loop: router-train, router-register
