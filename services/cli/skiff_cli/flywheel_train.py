"""`skiff flywheel train`: LoRA fine-tuning of a task's base model on a curated dataset (S5).

Trains on the dataset's train split with the prompt and schema the worker serves the adapter
with, and writes into `--output`: `peft/` (SGLang), `adapter.gguf` (llama.cpp),
`training.json`, and `checkpoints/` (for `--resume`). Options left out take
`TrainingConfig`'s defaults. Exit status: 0 written (or already finished, under `--resume`);
1 bad input (missing or corrupt dataset, unknown task, output in use without `--resume` or
`--overwrite`, settings that differ from the run being resumed); 2 the `flywheel` extra
(torch, transformers, peft, gguf) is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from skiff_extraction.prompts import UnknownPromptVersion
from skiff_flywheel.curate import UnknownTask
from skiff_flywheel.finetune import train
from skiff_flywheel.training_config import TrainingConfig
from skiff_flywheel.training_types import (
    FlywheelExtraMissing,
    StepReport,
    TrainingError,
    TrainingPlan,
    TrainingResult,
)
from skiff_inference.model_files import ModelFileError

console = Console()


def register(app: typer.Typer) -> None:
    """Add `train` to `app` (the `skiff flywheel` group)."""
    app.command("train")(train_command)


def train_command(
    task: Annotated[str, typer.Option(help="'<domain>.extract', e.g. flights.extract")],
    dataset: Annotated[Path, typer.Option(help="a dataset directory (flywheel curate/import)")],
    output: Annotated[Path, typer.Option(help="the directory to write the adapter into")],
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="optimizer steps (else epochs)")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="passes over the train split")] = None,
    seed: Annotated[int | None, typer.Option(help="LoRA init, dropout and batch order")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="sequences per step")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="AdamW peak rate")] = None,
    rank: Annotated[int | None, typer.Option(min=1, help="LoRA rank")] = None,
    alpha: Annotated[int | None, typer.Option(min=1, help="LoRA alpha")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(min=1, help="steps between checkpoints")
    ] = None,
    keep_checkpoints: Annotated[
        int | None, typer.Option(min=1, help="newest checkpoints kept (older ones deleted)")
    ] = None,
    export_dtype: Annotated[
        str | None, typer.Option(help="float32 or float16: how the adapter's files store it")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="train on the first N examples")] = None,
    share_prefix: Annotated[
        bool | None, typer.Option(help="run a batch's common prompt prefix once")
    ] = None,
    base_model: Annotated[Path | None, typer.Option(help="base GGUF (default: bundled)")] = None,
    base_model_id: Annotated[
        str | None, typer.Option(help="HF id of the base, for peft's adapter_config.json")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from the newest checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace what --output holds")] = False,
) -> None:
    """Fine-tune LoRA adapters on a dataset's train split; export for SGLang and llama.cpp."""
    settings: dict[str, Any] = {
        "max_steps": max_steps, "epochs": epochs, "seed": seed, "threads": threads,
        "batch_size": batch_size, "learning_rate": learning_rate, "rank": rank,
        "alpha": alpha, "checkpoint_every": checkpoint_every, "share_prefix": share_prefix,
        "keep_checkpoints": keep_checkpoints, "export_dtype": export_dtype,
    }  # fmt: skip
    try:
        config = TrainingConfig(**{k: v for k, v in settings.items() if v is not None})
    except ValidationError as error:
        console.print(f"[red]bad settings: {error}[/red]")
        raise typer.Exit(1) from error
    bar = _ProgressBar()
    try:
        with bar:
            result = train(
                task,
                dataset,
                output,
                config=config,
                base_model_path=base_model,
                base_model_id=base_model_id,
                limit=limit,
                resume=resume,
                overwrite=overwrite,
                on_plan=bar.plan,
                on_step=bar.step,
            )
    except FlywheelExtraMissing as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    except (TrainingError, UnknownTask, UnknownPromptVersion, ModelFileError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    _report(result)


class _ProgressBar:
    """A rich progress bar fed by `train`'s callbacks; a spinner line until the plan is known."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]training[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None
        self._status = console.status("tokenizing the dataset and loading the base model…")

    def __enter__(self) -> _ProgressBar:
        self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._status.stop()
        self._progress.stop()

    def plan(self, plan: TrainingPlan) -> None:
        self._status.stop()
        skipped = ", ".join(f"{k} {v}" for k, v in plan.skipped.items()) or "none"
        console.print(
            f"{plan.sequences} sequences ({plan.sequence_tokens} tokens; skipped: {skipped}), "
            f"base loaded in {plan.base_load_seconds:.1f} s, steps {plan.start_step + 1}"
            f"–{plan.total_steps}"
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=plan.total_steps, completed=plan.start_step, loss="–"
        )

    def step(self, report: StepReport) -> None:
        self._progress.update(self._task, completed=report.step, loss=f"{report.loss:.4f}")


def _report(result: TrainingResult) -> None:
    record = result.record
    if result.already_done:
        console.print(f"{result.output} already holds a finished run; nothing to do")
    table = Table(title=f"{record.task} adapter → {result.output}")
    table.add_column("")
    table.add_column("", justify="right")
    speed = record.throughput
    rows = [
        ("steps", str(record.steps)),
        ("epochs", f"{record.epochs:.2f}"),
        ("final loss", f"{record.final_loss:.4f}"),
        ("duration", f"{record.duration_s:.1f} s"),
        ("seconds / step", f"{speed.seconds_per_step:.2f}"),
        ("CPU seconds / step", f"{speed.cpu_seconds_per_step:.2f}"),
        ("training tokens / s", f"{speed.sequence_tokens_per_s:.0f}"),
        ("resumed at", ", ".join(map(str, record.resumed_at)) or "–"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for name, digest in record.files.items():
        console.print(f"{result.output / name}  sha256 {digest[:16]}…")
    console.print(f"{result.output / 'training.json'}")
