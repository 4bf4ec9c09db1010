"""The values and errors of a fine-tune that callers see, without torch.

`finetune.train` raises the errors and reports through the callbacks; the CLI maps the errors
to exit codes (1: bad input, 2: the `flywheel` extra is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skiff_flywheel.artifacts import GGUF_FILE, PEFT_DIR
from skiff_flywheel.flywheel_extra import FlywheelExtraMissing
from skiff_flywheel.training_record import TrainingRecord

__all__ = [
    "GGUF_FILE",
    "PEFT_DIR",
    "DatasetUnusable",
    "FlywheelExtraMissing",
    "OutputExists",
    "ResumeMismatch",
    "StepReport",
    "TrainingError",
    "TrainingPlan",
    "TrainingResult",
    "UnsupportedBase",
]


class TrainingError(Exception):
    """A fine-tune could not start or continue; the message says why."""


class DatasetUnusable(TrainingError):
    """The dataset is missing, corrupt, for another task, or has nothing to train on."""


class OutputExists(TrainingError):
    """The output directory holds a run; pass resume (continue it) or overwrite (replace it)."""


class ResumeMismatch(TrainingError):
    """The checkpoints were made with other data, base model or settings than this call's."""


class UnsupportedBase(TrainingError):
    """The base model's architecture is not one the GGUF LoRA export handles."""


@dataclass(frozen=True)
class TrainingPlan:
    """What a run is about to do (reported once, before the first step)."""

    total_steps: int
    start_step: int
    sequences: int
    skipped: dict[str, int]
    sequence_tokens: int
    base_load_seconds: float


@dataclass(frozen=True)
class StepReport:
    """One optimizer step, as it finished."""

    step: int
    total_steps: int
    loss: float
    learning_rate: float
    seconds: float


@dataclass(frozen=True)
class TrainingResult:
    """A finished run: where its files are, and its record."""

    output: Path
    record: TrainingRecord
    resumed: bool
    already_done: bool = False

    @property
    def gguf(self) -> Path:
        """The llama.cpp adapter."""
        return self.output / GGUF_FILE

    @property
    def peft_dir(self) -> Path:
        """The peft directory SGLang loads."""
        return self.output / PEFT_DIR
