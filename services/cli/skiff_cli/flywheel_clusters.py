"""`skiff flywheel clusters` (S3) and `skiff flywheel candidates` (S4).

Both read a JSONL export of the CALLS stream (`--input`, one `CallRecord` per line; lines
that cannot be read are counted and reported, not fatal). `clusters` embeds and clusters the
requests; `candidates` ranks the clusters for conversion, from the log or from a
`clusters.json` written before (`--clusters`, which skips the embedding). `--json` prints the
report as JSON; `--output DIR` writes it as JSON and Markdown.
Exit status: 0 done, 1 bad input (no such file, nothing usable, a bad catalog or clusters
file), 2 the `flywheel` extra is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from skiff_flywheel.call_log import read_export
from skiff_flywheel.candidates import DEFAULT_MIN_STABILITY, Ranking, rank_candidates
from skiff_flywheel.catalog import CatalogError, catalog_path, load_catalog
from skiff_flywheel.clusters import DEFAULT_SAMPLES, DEFAULT_THRESHOLD, ClusterReport, cluster_calls
from skiff_flywheel.embedding import DEFAULT_BATCH_SIZE, FlywheelExtraMissing, MiniLmEmbedder
from skiff_flywheel.logged_calls import read_calls
from skiff_flywheel.reports import (
    candidates_markdown,
    clusters_markdown,
    split_text,
    stability_text,
)

console = Console(stderr=True)
stdout = Console()

InputPath = Annotated[
    Path | None, typer.Option("--input", help="JSONL export of CALLS records (one per line)")
]
Threshold = Annotated[
    float, typer.Option(min=0.01, max=1.99, help="cosine distance at which clusters stop merging")
]
Samples = Annotated[int, typer.Option(min=0, max=20, help="sample requests per cluster")]
BatchSize = Annotated[int, typer.Option(min=1, help="texts per embedding batch")]
AsJson = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
OutputDir = Annotated[Path | None, typer.Option(help="write the report as JSON + Markdown here")]


def register(app: typer.Typer) -> None:
    """Add `clusters` and `candidates` to `app` (the `flywheel` group)."""
    app.command("clusters")(clusters_command)
    app.command("candidates")(candidates_command)


def clusters_command(
    input_path: InputPath = None,
    threshold: Threshold = DEFAULT_THRESHOLD,
    samples: Samples = DEFAULT_SAMPLES,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
    as_json: AsJson = False,
    output: OutputDir = None,
) -> None:
    """Embed and cluster the logged requests: volume, task, LLM share and cost per cluster."""
    report = _clusters(input_path, threshold, samples, batch_size)
    if output is not None:
        _write(output, "clusters", report.model_dump_json(indent=2), clusters_markdown(report))
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        _show_clusters(report)


def candidates_command(
    input_path: InputPath = None,
    clusters: Annotated[
        Path | None, typer.Option(help="a clusters.json from `clusters --output` (no embedding)")
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="base-model catalog (default: SKIFF_FLYWHEEL__CATALOG)")
    ] = None,
    min_stability: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="least schema stability of a candidate")
    ] = DEFAULT_MIN_STABILITY,
    limit: Annotated[int, typer.Option(min=1, help="rows in the table (JSON has all)")] = 10,
    threshold: Threshold = DEFAULT_THRESHOLD,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
    as_json: AsJson = False,
    output: OutputDir = None,
) -> None:
    """Rank clusters by what converting them to a micro-SLM saves, with a base model each."""
    if (input_path is None) == (clusters is None):
        _fail("give exactly one of --input (a call log) and --clusters (a clusters.json)")
    try:
        models = load_catalog(catalog)
    except CatalogError as error:
        _fail(str(error))
    if clusters is not None:
        report = _read_report(clusters)
    else:
        report = _clusters(input_path, threshold, DEFAULT_SAMPLES, batch_size)
        if output is not None:
            _write(output, "clusters", report.model_dump_json(indent=2), clusters_markdown(report))
    ranking = rank_candidates(
        report, models, catalog_source=str(catalog_path(catalog)), min_stability=min_stability
    )
    if output is not None:
        markdown = candidates_markdown(ranking)
        _write(output, "candidates", ranking.model_dump_json(indent=2), markdown)
    if as_json:
        sys.stdout.write(ranking.model_dump_json(indent=2) + "\n")
    else:
        _show_candidates(ranking, limit)


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


def _clusters(path: Path | None, threshold: float, samples: int, batch_size: int) -> ClusterReport:
    if path is None:
        _fail("--input is required")
    if not path.is_file():
        _fail(f"no such file: {path}")
    try:
        rows = list(read_export(path))
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read {path}: {error}")
    calls, skipped = read_calls(rows)
    if not calls:
        detail = ", ".join(f"{k} {n}" for k, n in sorted(skipped.items())) or "the file is empty"
        _fail(f"no usable call records in {path} ({len(rows)} lines; {detail})")
    try:
        embedder = MiniLmEmbedder(batch_size=batch_size)
        report = cluster_calls(rows, embedder, threshold=threshold, samples=samples)
    except FlywheelExtraMissing as error:
        _fail(str(error), code=2)
    distinct = sum(cluster.requests for cluster in report.clusters)
    console.print(
        f"{embedder.name}: loaded in {embedder.load_seconds:.1f} s; {report.used} calls, "
        f"{distinct} distinct requests: embedded in {report.embed_seconds:.1f} s, "
        f"clustered in {report.cluster_seconds:.2f} s"
    )
    return report


def _read_report(path: Path) -> ClusterReport:
    try:
        return ClusterReport.model_validate_json(path.read_bytes())
    except OSError as error:
        _fail(f"cannot read {path}: {error}")
    except ValidationError as error:
        _fail(f"{path} is not a clusters report: {error.error_count()} problem(s)")


def _write(directory: Path, name: str, as_json: str, markdown: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.json").write_text(as_json + "\n", encoding="utf-8")
        (directory / f"{name}.md").write_text(markdown, encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write {directory}: {error}")
    console.print(f"wrote {directory / name}.json and .md")


def _short(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _show_clusters(report: ClusterReport) -> None:
    skipped = ", ".join(f"{k} {n}" for k, n in report.skipped.items()) or "none"
    table = Table(
        title=f"{len(report.clusters)} clusters of {report.used} calls ({report.method})",
        caption=f"{report.records} records read; skipped: {skipped}",
    )
    for column in ("cluster", "calls", "distinct", "task", "LLM share", "cost $", "$/call"):
        table.add_column(column, justify="left" if column in ("cluster", "task") else "right")
    table.add_column("escalations")
    table.add_column("sample")
    for c in report.clusters:
        task = split_text(c) + (" [bold](no micro-SLM)[/bold]" if c.no_model else "")
        table.add_row(
            c.cluster_id, str(c.calls), str(c.requests), task, f"{c.llm_share:.2f}",
            f"{c.cost_usd:.4f}", f"{c.cost_per_call_usd:.6f}",
            ", ".join(f"{r} {n}" for r, n in c.reasons.items()),
            _short(c.samples[0]) if c.samples else "",
        )  # fmt: skip
    stdout.print(table)


def _show_candidates(ranking: Ranking, limit: int) -> None:
    table = Table(title="Conversion candidates", caption=ranking.formula)
    for column in ("rank", "cluster", "task", "calls", "LLM share", "savings $", "stability"):
        table.add_column(column, justify="left" if column in ("cluster", "task") else "right")
    table.add_column("base model")
    table.add_column("candidate")
    shown = ranking.candidates[:limit]
    for c in shown:
        table.add_row(
            str(c.rank), c.cluster_id, c.task + (" (no micro-SLM)" if c.no_model else ""),
            str(c.calls), f"{c.llm_share:.2f}", f"{c.savings_usd:.6f}",
            stability_text(c),
            c.base_model, "[green]yes[/green]" if c.eligible else "no",
        )  # fmt: skip
    stdout.print(table)
    for c in shown:
        stdout.print(f"[bold]{c.rank}. {c.cluster_id}[/bold] {c.task}")
        for reason in c.reasons:
            stdout.print(f"   • {reason}")
    if len(ranking.candidates) > limit:
        stdout.print(f"… {len(ranking.candidates) - limit} more (--limit, --json)")
