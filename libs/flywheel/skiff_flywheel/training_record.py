"""`training.json`: what a trained adapter is, what it came from, and how training went.

Written next to the exported adapter once training has finished, so a model card (or an
auditor) can name exactly the base model, data, prompt, schema and settings behind an
adapter, and check each exported file against its sha256.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from skiff_contracts.base import utc_now
from skiff_flywheel.artifacts import MANIFEST
from skiff_flywheel.training_config import TrainingConfig

RECORD = MANIFEST  # the adapter directory's manifest (`artifacts`)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseModelRef(_Frozen):
    """The GGUF the adapter was trained on (and must be served on)."""

    path: str
    sha256: str
    name: str
    architecture: str
    load_seconds: float = Field(description="GGUF -> transformers fp32, this run")


class DatasetRef(_Frozen):
    """The dataset split trained on, and what of it was used."""

    path: str
    version: str
    sha256: str
    split: str = "train"
    examples: int = Field(description="examples in the split (after --limit)")
    sequences: int = Field(description="examples trained on")
    skipped: dict[str, int] = Field(description="examples left out, by reason")


class LossPoint(_Frozen):
    """The training loss at one optimizer step (mean over that batch's target tokens)."""

    step: int
    loss: float
    learning_rate: float
    target_tokens: int


class Machine(_Frozen):
    """Where the run happened."""

    cpu_count: int
    torch_threads: int
    torch_version: str
    transformers_version: str
    peft_version: str
    device: str
    platform: str


class Throughput(_Frozen):
    """Speed of the optimizer steps this process ran (resumed runs: the last process only)."""

    steps: int
    seconds: float
    seconds_per_step: float
    cpu_seconds_per_step: float = Field(
        description="this process's CPU time per step, all threads: on a shared machine, "
        "wall time / CPU time says how much of the cores the run actually got"
    )
    sequence_tokens_per_s: float = Field(description="prompt + target tokens of the batches")
    evaluated_tokens_per_s: float = Field(description="tokens run through the model")
    target_tokens_per_s: float = Field(description="tokens the loss was taken on")


class TrainingRecord(_Frozen):
    """One finished fine-tune."""

    task: str
    domain: str
    base_model: BaseModelRef
    dataset: DatasetRef
    prompt_version: str
    schema_sha256: str = Field(description="of the draft model's JSON Schema (the model card's)")
    decoding_schema_sha256: str = Field(description="of the schema the engine decodes against")
    hyperparameters: TrainingConfig
    seed: int
    steps: int
    epochs: float = Field(description="passes over the trained sequences (steps x batch / n)")
    final_loss: float
    losses: tuple[LossPoint, ...]
    resumed_at: tuple[int, ...] = Field(description="steps a run was resumed from")
    duration_s: float = Field(description="wall time of all processes' optimizer steps")
    throughput: Throughput
    machine: Machine
    files: dict[str, str] = Field(description="exported file (relative path) -> sha256")
    created_at: datetime = Field(default_factory=utc_now)
