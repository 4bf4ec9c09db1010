"""`skiff flywheel run`: one turn of the conversion loop for one task, S2 to S6.

curate (from the CALLS stream, or `--sgd` labelled data) → train (LoRA) → evaluate against
the task's current champion, side by side → register as a candidate (`--rollout auto`: the
registry then moves it on its gates) → optionally wait for the rollout to end → append the
iteration to `<workdir>/iterations.jsonl` and rewrite the before/after report
(`report.md`, `report.json`, `report.svg`). Each iteration's files are kept in
`<workdir>/iteration-<n>/` (`dataset/`, `adapter/`, `evaluation.json`).
Exit status: 0 done, 1 bad input, nothing to train on, or a step that failed on it (training,
the engine, registration), 2 registry or NATS unreachable, or the flywheel extra missing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from skiff_cli import flywheel_report, stack
from skiff_cli.flywheel_loop import (
    champion_of,
    contender,
    register_adapter,
    run_evaluation,
    show_report,
)
from skiff_cli.flywheel_sources import (
    EvalShare,
    Home,
    NatsUrl,
    Task,
    console,
    read_log,
    show_dataset,
    stream_source,
    write_or_exit,
)
from skiff_cli.registry_cli import RegistryApi, RegistryUnavailable, default_who
from skiff_contracts.base import utc_now
from skiff_contracts.registry import GetHistory, GetModel, GetSeries, History, ModelCard, ModelView
from skiff_extraction.cards import BUNDLED_BASE_MODEL
from skiff_extraction.prompts import PROMPT_VERSION
from skiff_flywheel.artifacts import AdapterError
from skiff_flywheel.curate import DEFAULT_EVAL_SHARE, Curated, UnknownTask, curate
from skiff_flywheel.dataset import DatasetCorrupt, Manifest
from skiff_flywheel.evaluate import DEFAULT_TARGET_ACCURACY, Contender
from skiff_flywheel.registration import BASELINE, CANDIDATE, RegistrationError
from skiff_flywheel.sgd import SOURCE as SGD_SOURCE
from skiff_flywheel.sgd import SgdFormatError, import_sgd
from skiff_flywheel.training_types import FlywheelExtraMissing, TrainingError
from skiff_inference.engine import EngineError

POLL_S = 2.0


def _dataset(
    task: str, output: Path, sgd: Path | None, eval_share: float, nats_url: str | None, home: Path
) -> Manifest:
    """S2: the iteration's dataset, from the call log or from labelled data."""
    curated: Curated
    if sgd is not None:
        curated, source = import_sgd(sgd, task, eval_share=eval_share), SGD_SOURCE
    else:
        records = read_log(stream_source(nats_url, home), task, None)
        curated, source = curate(records, task, eval_share=eval_share), "calls"
    manifest = write_or_exit(curated, output, task=task, sources=[source], eval_share=eval_share,
                             version=None, overwrite=True)  # fmt: skip
    show_dataset(manifest, output)
    return manifest


def _train(task: str, folder: Path, settings: dict[str, Any], limit: int | None) -> Any:
    """S5: LoRA fine-tuning on the iteration's dataset; resumes an interrupted run of it."""
    from skiff_flywheel.finetune import train  # torch and friends: the flywheel extra
    from skiff_flywheel.training_config import TrainingConfig

    config = TrainingConfig(**{k: v for k, v in settings.items() if v is not None})
    result = train(task, folder / "dataset", folder / "adapter", config=config, resume=True,
                   limit=limit)  # fmt: skip
    record = result.record
    console.print(f"trained {record.steps} steps in {record.duration_s:.0f} s "
                  f"(final loss {record.final_loss:.4f}) → {folder / 'adapter'}")  # fmt: skip
    return result


async def _live_share(api: RegistryApi, task: str) -> float | None:
    """The task's latest live SLM share from the registry's series."""
    series = await api.ask(GetSeries(task=task))
    shares = [p.slm_share for p in getattr(series, "points", ()) if p.slm_share is not None]
    return shares[-1] if shares else None


async def _wait(api: RegistryApi, model_id: str, wait_s: float) -> ModelCard | None:
    """Poll until the candidate is champion, rolled back (halted) or retired, or time is up."""
    deadline = time.monotonic() + wait_s
    card = None
    while True:
        view = await api.ask(GetModel(model_id=model_id))
        card = view.card if isinstance(view, ModelView) else card
        settled = card is not None and (
            card.status in ("champion", "retired") or card.rollout == "halted"
        )
        if settled or time.monotonic() >= deadline:
            return card
        await asyncio.sleep(POLL_S)


async def _moves(api: RegistryApi, task: str, model_id: str, since: datetime) -> tuple[str, ...]:
    history = await api.ask(GetHistory(task=task))
    moves = history.moves if isinstance(history, History) else ()
    return tuple(
        f"{m.at:%H:%M:%S} {m.who}: {m.status} ({m.why})"
        for m in moves
        if m.model_id == model_id and m.at >= since
    )


def register(app: typer.Typer) -> None:
    """Add `run` to the flywheel's command group."""

    @app.command("run")
    def run_command(
        task: Task,
        workdir: Annotated[Path, typer.Option(help="the loop's files for this task")],
        sgd: Annotated[
            Path | None, typer.Option(help="train on this labelled data instead of the call log")
        ] = None,
        eval_share: EvalShare = DEFAULT_EVAL_SHARE,
        max_steps: Annotated[int | None, typer.Option(min=1)] = None,
        epochs: Annotated[int | None, typer.Option(min=1)] = None,
        seed: Annotated[int | None, typer.Option()] = None,
        threads: Annotated[int, typer.Option(min=1, help="torch and engine threads")] = 2,
        limit: Annotated[int | None, typer.Option(min=1, help="train on the first N")] = None,
        eval_limit: Annotated[int | None, typer.Option(min=1, help="evaluate the first N")] = None,
        target_accuracy: Annotated[float, typer.Option(min=0.0, max=1.0)] = (
            DEFAULT_TARGET_ACCURACY
        ),
        name: Annotated[str, typer.Option(help="the new version's model name")] = (
            "smollm2-135m-lora"
        ),
        rollout: Annotated[Literal["auto", "manual"], typer.Option()] = "auto",
        wait_s: Annotated[
            float, typer.Option(min=0.0, help="wait this long for the rollout to settle")
        ] = 0.0,
        nats_url: NatsUrl = None,
        home: Home = stack.DEFAULT_HOME,
    ) -> None:
        """One turn of the loop: curate, train, evaluate, register, (wait), report."""
        url = stack.resolve_nats_url(nats_url, home)
        iteration = len(flywheel_report.load(workdir)) + 1
        folder = workdir / f"iteration-{iteration}"
        started = utc_now()
        try:
            manifest = _dataset(task, folder / "dataset", sgd, eval_share, nats_url, home)
            if manifest.counts["train"] == 0 or manifest.counts["eval"] == 0:
                console.print(f"[red]nothing to train or evaluate on: {manifest.counts}[/red]")
                raise typer.Exit(1)
            settings = {"max_steps": max_steps, "epochs": epochs, "seed": seed,
                        "threads": threads}  # fmt: skip
            training = _train(task, folder, settings, limit)
            work = _evaluate_register_wait(
                task, folder, url, eval_limit=eval_limit, threads=threads,
                target_accuracy=target_accuracy, name=name,
                version=f"{manifest.version}-{iteration}", rollout=rollout, wait_s=wait_s,
            )  # fmt: skip
            baseline_id, card, before, after, moves, report = asyncio.run(work)
        except (UnknownTask, SgdFormatError, DatasetCorrupt, AdapterError, RegistrationError,
                TrainingError, EngineError) as error:  # fmt: skip
            console.print(f"[red]{type(error).__name__}: {error}[/red]")
            raise typer.Exit(1) from error
        except (RegistryUnavailable, FlywheelExtraMissing) as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from error
        record = training.record
        flywheel_report.append(workdir, flywheel_report.Iteration(
            iteration=iteration, task=task, started_at=started,
            dataset={"id": f"{task}@{manifest.version}", "source": list(manifest.sources),
                     "counts": dict(manifest.counts)},
            training={"steps": record.steps, "duration_s": round(record.duration_s, 1),
                      "final_loss": record.final_loss, "machine": record.machine.model_dump()},
            baseline_model=baseline_id, candidate_model=card.model_id, offline=report.metrics,
            live_slm_share_before=before, live_slm_share_after=after,
            outcome=f"{card.status} (rollout {card.rollout})", moves=moves,
        ))  # fmt: skip
        paths = flywheel_report.write(workdir)
        console.print(f"iteration {iteration}: {card.model_id} is {card.status}; "
                      f"report → {', '.join(str(p) for p in paths)}")  # fmt: skip


async def _evaluate_register_wait(
    task: str,
    folder: Path,
    url: str,
    *,
    eval_limit: int | None,
    threads: int,
    target_accuracy: float,
    name: str,
    version: str,
    rollout: Literal["auto", "manual"],
    wait_s: float,
) -> tuple[str | None, ModelCard, float | None, float | None, tuple[str, ...], Any]:
    """S6: evaluate against the current champion, register, wait; the live shares around."""
    async with await RegistryApi.connect(url, identity=stack.FLYWHEEL) as api:
        champion = await champion_of(api, task)
        before = await _live_share(api, task)
    if champion is not None and champion.adapter:
        baseline = contender(BASELINE, Path(champion.adapter))
    else:  # the base model, with the prompt the champion serves it with
        baseline = Contender(BASELINE, champion.prompt_version if champion else PROMPT_VERSION)
    report = await run_evaluation(
        task, folder / "dataset", contender(CANDIDATE, folder / "adapter"), baseline,
        limit=eval_limit, threads=threads, target_accuracy=target_accuracy,
    )  # fmt: skip
    (folder / "evaluation.json").write_text(report.model_dump_json(indent=2) + "\n", "utf-8")
    show_report(report)
    registered_at = utc_now()
    card = await register_adapter(
        folder / "adapter", report, name=name, version=version, rollout=rollout,
        base_model=champion.base_model if champion else BUNDLED_BASE_MODEL,
        engine=champion.engine if champion else "llamacpp", owner=default_who(None), nats_url=url,
    )  # fmt: skip
    console.print(f"registered {card.model_id} ({card.status}, rollout {card.rollout})")
    async with await RegistryApi.connect(url, identity=stack.FLYWHEEL) as api:
        if wait_s > 0:
            card = await _wait(api, card.model_id, wait_s) or card
        after = await _live_share(api, task)
        moves = await _moves(api, task, card.model_id, registered_at)
    return champion.model_id if champion else None, card, before, after, moves, report
