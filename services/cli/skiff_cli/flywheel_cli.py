"""`skiff flywheel`: the conversion loop's datasets, curated from logged calls or imported.

`curate` reads a JSONL export of the CALLS stream (one `CallRecord` per line); `import`
reads externally labelled data (the SGD development set). Both write a versioned dataset
directory: `train.jsonl`, `eval.jsonl` and `manifest.json` with counts and a content hash.
Exit status: 0 written, 1 bad input (unknown task, unreadable source, dataset already there).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from skiff_flywheel.curate import DEFAULT_EVAL_SHARE, RULES, Curated, UnknownTask, curate
from skiff_flywheel.dataset import DatasetExists, Manifest, write_dataset
from skiff_flywheel.sgd import SOURCE as SGD_SOURCE
from skiff_flywheel.sgd import SgdFormatError, import_sgd

flywheel_app = typer.Typer(no_args_is_help=True, help=__doc__.splitlines()[0].split(": ", 1)[1])
console = Console()

Task = Annotated[str, typer.Option(help="'<domain>.extract', e.g. flights.extract")]
Output = Annotated[Path, typer.Option(help="the dataset directory to write")]
EvalShare = Annotated[
    float, typer.Option(min=0.0, max=0.99, help="share of groups held out for evaluation")
]
Version = Annotated[str | None, typer.Option(help="dataset version (default: the content hash)")]
Overwrite = Annotated[bool, typer.Option(help="replace a dataset already in --output")]


def _call_records(path: Path) -> Iterator[dict[str, Any]]:
    """The export's lines as dicts; a line that is not a JSON object is passed on as an empty
    record, which curation counts as unreadable."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                value = None
            yield value if isinstance(value, dict) else {}


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


@flywheel_app.command("curate")
def curate_command(
    task: Task,
    input_path: Annotated[Path, typer.Option("--input", help="JSONL export of CALLS records")],
    output: Output,
    eval_share: EvalShare = DEFAULT_EVAL_SHARE,
    version: Version = None,
    overwrite: Overwrite = False,
) -> None:
    """Logged calls with an accepted, valid final answer → a deduplicated, split dataset."""
    if not input_path.is_file():
        console.print(f"[red]no such file: {input_path}[/red]")
        raise typer.Exit(1)
    try:
        curated = curate(_call_records(input_path), task, eval_share=eval_share)
    except UnknownTask as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
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


from skiff_cli import flywheel_train  # noqa: E402  (registered last: its own module)

flywheel_train.register(flywheel_app)
