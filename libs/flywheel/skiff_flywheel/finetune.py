"""S5 of the conversion loop: LoRA fine-tuning of a task's base model on a curated dataset.

`train(task, dataset, output)` reads a versioned dataset (`dataset.read_dataset`), turns
its train split into sequences the llama.cpp engine would feed and emit token for token
(`training_data`), fine-tunes LoRA adapters on the base GGUF dequantized into transformers
(`training_run`: `base_model`, `lora_training`, `checkpoints`), and exports the adapter for
both engines (`lora_export`) with a `training.json` record (`training_record`):

    peft/adapter_config.json, peft/adapter_model.safetensors   SGLang: /load_lora_adapter
    adapter.gguf                                   llama.cpp: LlamaCppEngine.load_adapter
    training.json                                  what it is and how it went
    checkpoints/run.json, checkpoints/step-NNNNNNN/    resumable state

Deterministic: the same data, base, settings, seed and thread count give bit-identical
adapters (LoRA init, dropout and batch order all derive from `seed`), and a run resumed from
a checkpoint ends identical to one never interrupted. This module checks its inputs before
anything heavy and imports torch and friends only after `require_flywheel()`, so it loads,
and refuses bad input, without the `flywheel` extra.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from skiff_extraction.prompts import check_prompt_version
from skiff_flywheel.curate import domain_of
from skiff_flywheel.dataset import MANIFEST, DatasetCorrupt, Example, Manifest, read_dataset
from skiff_flywheel.flywheel_extra import require_flywheel
from skiff_flywheel.training_config import BOOKKEEPING, TrainingConfig
from skiff_flywheel.training_data import build_training_set
from skiff_flywheel.training_record import RECORD, TrainingRecord
from skiff_flywheel.training_types import (
    DatasetUnusable,
    OutputExists,
    ResumeMismatch,
    StepReport,
    TrainingPlan,
    TrainingResult,
)
from skiff_inference.engine_tokenizer import EngineTokenizer
from skiff_inference.model_files import bundled_model_path

if TYPE_CHECKING:
    from skiff_flywheel.base_model import LoadedBase


def train(
    task: str,
    dataset: Path,
    output: Path,
    *,
    config: TrainingConfig | None = None,
    base_model_path: Path | None = None,
    base_model_id: str | None = None,
    limit: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    base: LoadedBase | None = None,
    on_plan: Callable[[TrainingPlan], None] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> TrainingResult:
    """Fine-tune `task`'s base model on `dataset`'s train split; export into `output`.

    `base_model_path` defaults to the bundled SmolLM2 GGUF; `base` is that model already
    loaded (`base_model.load_base`), to reuse one load across runs. `base_model_id` goes
    into the peft `adapter_config.json` (the HF id of the base SGLang serves). `limit`
    trains on the first N examples of the split. `resume` continues from the newest
    checkpoint in `output` (and returns a finished run as it is); `overwrite` replaces
    what `output` holds. Raises `UnknownTask`, `UnknownPromptVersion`, `ModelFileError`,
    `DatasetUnusable`, `OutputExists`, `ResumeMismatch`, `UnsupportedBase` or
    `FlywheelExtraMissing`. An exception from `on_step` stops the run; its last checkpoint
    is where `resume=True` picks it up.
    """
    config = config or TrainingConfig()
    domain = domain_of(task)
    check_prompt_version(config.prompt_version)
    manifest, examples = read_train_split(dataset, task, limit)
    model_path = base_model_path or bundled_model_path()
    done = _prepare_output(output, resume=resume, overwrite=overwrite)
    if done is not None:
        _check_finished(output, done.record, task, manifest, len(examples), config)
        if done.record.hyperparameters.export_dtype == config.export_dtype:
            return done
        # The same run exported another way: its last checkpoint is exported again.
    require_flywheel()
    tokenizer = EngineTokenizer(model_path)
    try:
        training_set = build_training_set(
            examples,
            domain,
            tokenizer,
            prompt_version=config.prompt_version,
            max_length=config.max_length,
        )
        pad_token = tokenizer.end_of_turn[-1]  # never a label: padding is masked out
    finally:
        tokenizer.close()
    if not training_set.sequences:
        raise DatasetUnusable(
            f"{dataset}: none of {len(examples)} examples has a faithful target "
            f"(skipped: {training_set.skipped})"
        )
    from skiff_flywheel.training_run import TrainingRun

    run = TrainingRun(
        task=task,
        domain=domain,
        dataset=dataset,
        manifest=manifest,
        examples=len(examples),
        training_set=training_set,
        config=config,
        output=output,
        model_path=model_path,
        base_model_id=base_model_id,
        pad_token=pad_token,
    )
    return run.execute(base, resume=resume, on_plan=on_plan, on_step=on_step)


def read_train_split(
    dataset: Path, task: str, limit: int | None = None
) -> tuple[Manifest, list[Example]]:
    """The dataset's manifest and the first `limit` train examples; `DatasetUnusable` if bad."""
    if not (dataset / MANIFEST).is_file():
        raise DatasetUnusable(f"no dataset at {dataset} (no {MANIFEST})")
    try:
        manifest, splits = read_dataset(dataset)
    except (DatasetCorrupt, ValidationError, OSError, ValueError) as error:
        raise DatasetUnusable(f"{dataset}: {error}") from error
    if manifest.task != task:
        raise DatasetUnusable(f"{dataset} is a {manifest.task} dataset, not {task}")
    examples = splits["train"][:limit] if limit is not None else splits["train"]
    if not examples:
        raise DatasetUnusable(f"{dataset}: the train split is empty")
    return manifest, examples


def _check_finished(
    output: Path,
    record: TrainingRecord,
    task: str,
    manifest: Manifest,
    examples: int,
    config: TrainingConfig,
) -> None:
    """A finished run is this run only if it trained the same task on the same data with
    the same settings; anything else is `ResumeMismatch`, never silently reused."""
    changed = [
        name
        for name, same in (
            ("task", record.task == task),
            ("dataset", record.dataset.sha256 == manifest.sha256),
            ("examples", record.dataset.examples == examples),
            ("hyperparameters", _trained_by(record.hyperparameters) == _trained_by(config)),
        )
        if not same
    ]
    if changed:
        raise ResumeMismatch(
            f"the finished run in {output} differs: "
            f"{', '.join(changed)} changed (overwrite it, or train into another directory)"
        )


def _prepare_output(output: Path, *, resume: bool, overwrite: bool) -> TrainingResult | None:
    """Refuse, clear, or (a finished run under `resume`) return what `output` holds."""
    if not (output.exists() and any(output.iterdir())):
        return None
    if overwrite:
        shutil.rmtree(output)
        return None
    if not resume:
        raise OutputExists(f"{output} is not empty (resume it, or overwrite it)")
    record = output / RECORD
    if record.is_file():
        try:
            finished = TrainingRecord.model_validate_json(record.read_text("utf-8"))
        except ValidationError as error:
            raise ResumeMismatch(f"{record} is not a finished run's record: {error}") from error
        return TrainingResult(output, finished, resumed=True, already_done=True)
    return None


def _trained_by(config: TrainingConfig) -> dict[str, object]:
    """The settings that decide the trained weights (not where or how they are written)."""
    return config.model_dump(exclude=set(BOOKKEEPING))
