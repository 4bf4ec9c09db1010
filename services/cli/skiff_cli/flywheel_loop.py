"""`skiff flywheel evaluate | register`: S6 of the conversion loop.

`evaluate` scores a trained adapter against a baseline (the bundled base model, or another
adapter) on a dataset's eval split, side by side on one engine, and writes a report.
`register` turns an adapter and its report into a candidate model card in the registry;
with `--rollout auto` the registry then takes it through shadow, canary and champion on its
gates, or rolls it back. Exit status: 0 done, 1 bad input, 2 registry unreachable or refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from skiff_cli import stack
from skiff_cli.registry_cli import NatsUrl, RegistryApi, RegistryUnavailable, default_who
from skiff_contracts.registry import (
    Ack,
    ListModels,
    ModelCard,
    ModelList,
    RegisterModel,
    RolloutMode,
)
from skiff_extraction.calibration import BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION
from skiff_extraction.cards import BUNDLED_BASE_MODEL, extraction_card
from skiff_extraction.prompts import PROMPT_VERSION
from skiff_flywheel.artifacts import MANIFEST, AdapterError
from skiff_flywheel.curate import UnknownTask, domain_of
from skiff_flywheel.dataset import DatasetCorrupt, read_dataset, split_sha256
from skiff_flywheel.evaluate import (
    DEFAULT_TARGET_ACCURACY,
    Contender,
    EvaluationReport,
    evaluate,
)
from skiff_flywheel.registration import (
    BASELINE,
    CANDIDATE,
    RegistrationError,
    adapter_card,
)
from skiff_flywheel.shipping import ship
from skiff_inference.engine import EngineError
from skiff_inference.llamacpp import LlamaCppEngine

console = Console()

Task = Annotated[str, typer.Option(help="'<domain>.extract', e.g. flights.extract")]
Rollout = Annotated[
    Literal["auto", "manual"],
    typer.Option(help="auto: the registry moves it on its gates; manual: people do"),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def contender(label: str, spec: str | Path | None) -> Contender:
    """`base` (the bundled model, its few-shot prompt) or an adapter directory."""
    if spec is None or str(spec) == "base":
        return Contender(label, PROMPT_VERSION)
    directory = Path(spec)
    try:
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise AdapterError(f"{directory} holds no readable {MANIFEST}: {error}") from error
    if not isinstance(manifest, dict) or not manifest.get("prompt_version"):
        raise AdapterError(f"{directory / MANIFEST} names no prompt_version")
    return Contender(label, str(manifest["prompt_version"]), adapter_dir=directory)


async def run_evaluation(
    task: str,
    dataset: Path,
    candidate: Contender,
    baseline: Contender,
    *,
    limit: int | None,
    threads: int,
    target_accuracy: float,
) -> EvaluationReport:
    """Both contenders on the dataset's eval split, on one engine."""
    domain = domain_of(task)
    manifest, splits = read_dataset(dataset)
    if manifest.task != task:
        raise UnknownTask(f"{dataset} is a {manifest.task} dataset, not {task}")
    examples = splits["eval"][:limit] if limit else splits["eval"]
    engine = LlamaCppEngine(threads=threads)
    started = time.perf_counter()
    try:
        with Progress(console=console, transient=True) as bar:
            job = bar.add_task(f"evaluating {task}", total=len(examples))
            figures = await evaluate(
                engine, domain, examples, [baseline, candidate],
                target_accuracy=target_accuracy,
                progress=lambda done, _: bar.update(job, completed=done),
            )  # fmt: skip
    finally:
        await engine.aclose()
    return EvaluationReport(
        task=task, dataset_id=f"{task}@{manifest.version}", dataset_sha256=manifest.sha256,
        eval_sha256=split_sha256(examples), examples=len(examples), target_accuracy=target_accuracy,
        contenders={BASELINE: baseline.describe(), CANDIDATE: candidate.describe()},
        metrics=figures, duration_s=round(time.perf_counter() - started, 1),
        machine={"cpus": os.cpu_count(), "engine_threads": threads},
    )  # fmt: skip


SHOWN = ("slot_accuracy", "kept_accuracy", "valid_rate", "escalation_rate", "invented_rate",
         "threshold", "kept_share_at_threshold", "kept_accuracy_at_threshold", "p50_ms",
         "tokens_in_mean", "tokens_out_mean")  # fmt: skip


def show_report(report: EvaluationReport) -> None:
    table = Table(title=f"{report.task}: {report.examples} eval examples of {report.dataset_id}")
    table.add_column("figure")
    for label in report.metrics:
        table.add_column(label, justify="right")
    for name in SHOWN:
        cells = [report.metrics[label].get(name) for label in report.metrics]
        table.add_row(name, *("—" if v is None else f"{v:g}" for v in cells))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `evaluate` and `register` to the flywheel's command group."""

    @app.command("evaluate")
    def evaluate_command(
        task: Task,
        dataset: Annotated[Path, typer.Option(help="a dataset directory (its eval split)")],
        candidate: Annotated[Path, typer.Option(help="the adapter directory to evaluate")],
        output: Annotated[Path, typer.Option(help="where to write the report (JSON)")],
        baseline: Annotated[
            str, typer.Option(help="'base' (the bundled model) or an adapter directory")
        ] = "base",
        limit: Annotated[int | None, typer.Option(min=1, help="the first N eval examples")] = None,
        threads: Annotated[int, typer.Option(min=1)] = 2,
        target_accuracy: Annotated[
            float, typer.Option(min=0.0, max=1.0, help="kept accuracy the threshold must reach")
        ] = DEFAULT_TARGET_ACCURACY,
    ) -> None:
        """Score an adapter against a baseline on the eval split; write the report."""
        try:
            report = asyncio.run(
                run_evaluation(
                    task,
                    dataset,
                    contender(CANDIDATE, candidate),
                    contender(BASELINE, baseline),
                    limit=limit,
                    threads=threads,
                    target_accuracy=target_accuracy,
                )
            )
        except (UnknownTask, DatasetCorrupt, AdapterError, EngineError, OSError) as error:
            raise fail(f"{type(error).__name__}: {error}") from error
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report.model_dump_json(indent=2) + "\n", "utf-8")
        show_report(report)
        console.print(f"report → {output}")

    @app.command("register")
    def register_command(
        task: Task,
        adapter: Annotated[Path, typer.Option(help="the trained adapter's directory")],
        evaluation: Annotated[Path, typer.Option(help="its `skiff flywheel evaluate` report")],
        version: Annotated[str, typer.Option(help="the new model version")],
        name: Annotated[str, typer.Option(help="the model's name")] = "smollm2-135m-lora",
        rollout: Rollout = "auto",
        base_model: Annotated[str, typer.Option(help="as the workers name it")] = (
            BUNDLED_BASE_MODEL
        ),
        engine: Annotated[str, typer.Option(help="the engine kind that serves it")] = "llamacpp",
        owner: Annotated[str | None, typer.Option(help="default: $USER")] = None,
        ship: Annotated[
            Path | None,
            typer.Option(
                help="write the card and adapter into this directory (package data "
                "of a release) instead of registering them"
            ),
        ] = None,
        nats_url: NatsUrl = None,
    ) -> None:
        """Register an evaluated adapter as a candidate version of its task (or ship it)."""
        try:
            report = EvaluationReport.model_validate_json(evaluation.read_text("utf-8"))
            if report.task != task:
                raise RegistrationError(f"{evaluation} evaluates {report.task}, not {task}")
            if ship is not None:
                shipped = ship_adapter(
                    adapter,
                    report,
                    ship,
                    name=name,
                    version=version,
                    base_model=base_model,
                    engine=engine,
                    owner=owner,
                )
                console.print(f"shipped {task}/{name}@{version} → {shipped}")
                return
            card = asyncio.run(
                register_adapter(
                    adapter,
                    report,
                    name=name,
                    version=version,
                    rollout=rollout,
                    base_model=base_model,
                    engine=engine,
                    owner=default_who(owner),
                    nats_url=stack.resolve_nats_url(nats_url),
                )
            )
        except (RegistrationError, AdapterError, OSError, ValueError) as error:
            raise fail(str(error)) from error
        except RegistryUnavailable as error:
            raise fail(str(error), 2) from error
        baseline = card.evaluations[-1].baseline_model if card.evaluations else None
        console.print(f"registered {card.model_id}: {card.status}, rollout {card.rollout}")
        if baseline is None:
            console.print("[yellow]its evaluation is not against the current champion: "
                          "automatic rollout waits for a fresh one[/yellow]")  # fmt: skip


def ship_adapter(
    adapter: Path,
    report: EvaluationReport,
    destination: Path,
    *,
    name: str,
    version: str,
    base_model: str,
    engine: str,
    owner: str | None,
) -> Path:
    """Write a shipped adapter (`shipping.ship`); its evaluation's baseline is the bundled
    base model every worker registers, which is the champion it will replace."""
    domain = domain_of(report.task)
    base, _ = extraction_card(domain, name=BUNDLED_MODEL_NAME, version=BUNDLED_MODEL_VERSION,
                              base_model=base_model, engine=engine, owner="skiff")  # fmt: skip
    card, _ = adapter_card(
        adapter, report, name=name, version=version, base_model=base_model, engine=engine,
        owner=owner or "skiff", rollout="manual", champion=base,
    )  # fmt: skip
    return ship(adapter, report, card, destination)


async def champion_of(api: RegistryApi, task: str) -> ModelCard | None:
    listed = await api.ask(ListModels(task=task))
    if not isinstance(listed, ModelList):
        raise RegistryUnavailable(f"the registry did not list {task}: {listed!r}")
    champion = next((a.champion for a in listed.aliases if a.task == task), None)
    return next((v.card for v in listed.models if v.card.model_id == champion), None)


async def register_adapter(
    adapter: Path,
    report: EvaluationReport,
    *,
    name: str,
    version: str,
    rollout: RolloutMode,
    base_model: str,
    engine: str,
    owner: str,
    nats_url: str,
) -> ModelCard:
    async with await RegistryApi.connect(nats_url, identity=stack.FLYWHEEL) as api:
        champion = await champion_of(api, report.task)
        card, schema = adapter_card(
            adapter, report, name=name, version=version, base_model=base_model, engine=engine,
            owner=owner, rollout=rollout, champion=champion,
        )  # fmt: skip
        reply: Any = await api.ask(RegisterModel(card=card, json_schema=schema))
    if not isinstance(reply, Ack) or reply.card is None:
        raise RegistrationError(f"the registry refused {card.model_id}: {reply!r}")
    return reply.card
