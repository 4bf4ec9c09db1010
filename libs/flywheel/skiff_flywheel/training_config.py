"""The hyperparameters of a LoRA fine-tune, in one model, with the defaults and why.

Every field is recorded in the run's `training.json`, and a resumed run must use the same
values (its checkpoints were made under them). The defaults are for the micro-SLM case: a
135M-parameter base, a few hundred to a few thousand examples, a 2-core CPU; on a GPU the
same defaults hold, with `threads` ignored by CUDA kernels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION

Schedule = Literal["cosine", "linear", "constant"]
# Settings that change what a run writes down, not what it trains: a resumed run may change
# them (keep more checkpoints, export at half precision) and still continue the same run.
BOOKKEEPING = frozenset({"checkpoint_every", "log_every", "keep_checkpoints", "export_dtype"})

# All linear layers of a llama block: attention and MLP. Adapting the MLP too roughly
# doubles the trainable parameters (0.9 M -> 2.4 M at rank 8 on SmolLM2-135M) for little
# extra step time, and llama.cpp and SGLang both serve LoRA on these seven.
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainingConfig(BaseModel):
    """Hyperparameters and run settings of one fine-tune (see each field's description)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int = Field(default=8, ge=1, le=256, description="LoRA rank r")
    alpha: int = Field(
        default=16,
        gt=0,
        description="LoRA alpha; the update is scaled by alpha / rank, as in peft and llama.cpp",
    )
    dropout: float = Field(
        default=0.05, ge=0, lt=1, description="dropout on the LoRA input (peft lora_dropout)"
    )
    target_modules: tuple[str, ...] = Field(
        default=LLAMA_LINEAR, min_length=1, description="linear layers that get an adapter"
    )
    learning_rate: float = Field(
        default=1e-3,
        gt=0,
        description="AdamW peak learning rate; LoRA on a 135M base takes a higher rate than "
        "the 2e-4 usual for 7B bases",
    )
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay")
    schedule: Schedule = Field(default="cosine", description="decay after warm-up, to 0")
    warmup_steps: int = Field(
        default=10, ge=0, description="linear warm-up from 0, at most a tenth of the run"
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="gradient clipping (L2 norm)")
    epochs: int = Field(default=3, ge=1, description="passes over the training split")
    max_steps: int | None = Field(
        default=None, ge=1, description="optimizer steps; when set, replaces `epochs`"
    )
    batch_size: int = Field(default=8, ge=1, description="sequences per optimizer step")
    max_length: int = Field(
        default=512,
        ge=16,
        description="longest sequence (prompt + target) trained on; longer examples are "
        "skipped and counted, never truncated (a cut target teaches a broken JSON)",
    )
    seed: int = Field(default=0, description="seeds LoRA init, dropout and batch order")
    threads: int = Field(default=2, ge=1, description="torch intra-op threads (CPU)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="where to train: auto takes a CUDA GPU when torch sees one (bit-identical "
        "reruns are only promised on CPU: CUDA kernels may reorder sums)",
    )
    checkpoint_every: int = Field(
        default=25, ge=1, description="steps between checkpoints (and one at the end)"
    )
    log_every: int = Field(default=1, ge=1, description="steps between loss records")
    keep_checkpoints: int = Field(default=1, ge=1, description="newest checkpoints kept")
    share_prefix: bool = Field(
        default=True,
        description="evaluate the prompt prefix a batch shares once, not once per sequence "
        "(same loss up to float rounding; dropout on it is then shared by the batch)",
    )
    export_dtype: Literal["float32", "float16"] = Field(
        default="float32",
        description="how the exported adapter stores its weights: float16 halves the files "
        "(what the shipped adapters use); training itself is float32 either way",
    )
    prompt_version: str = Field(
        default=ADAPTER_PROMPT_VERSION,
        description="the prompt trained on, and the one the adapter must be served with",
    )
