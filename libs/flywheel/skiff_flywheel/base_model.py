"""The base model to fine-tune: a GGUF file dequantized into a transformers model (fp32).

transformers reads the GGUF itself (`from_pretrained(directory, gguf_file=name)`): config from
the metadata, weights dequantized to fp32 (about 20 s for SmolLM2-135M here, most of it
parsing the 49k-token vocabulary twice and building gguf-py's tensor name maps), q/k rows
put back into HF order. Training on exactly the weights the engine serves (Q4_1, dequantized)
keeps the adapter's correction aimed at the quantized model rather than at an fp16 original
the engine never runs. Needs the `flywheel` extra: import this module only after
`require_flywheel()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from skiff_flywheel.artifacts import file_sha256
from skiff_flywheel.gguf_lora import Heads
from skiff_flywheel.training_types import UnsupportedBase

# Architectures whose GGUF layout `gguf_lora` knows (tensor names, q/k permutation).
SUPPORTED = frozenset({"llama"})


@dataclass(frozen=True)
class LoadedBase:
    """A base model in memory, and which file it is."""

    model: PreTrainedModel
    path: Path
    sha256: str
    name: str
    load_seconds: float

    @property
    def architecture(self) -> str:
        """The GGUF/transformers architecture name ("llama")."""
        return str(self.model.config.model_type)

    @property
    def heads(self) -> Heads:
        """Attention and key/value head counts."""
        config = self.model.config
        return Heads(int(config.num_attention_heads), int(config.num_key_value_heads))


def load_base(path: Path) -> LoadedBase:
    """Load the GGUF at `path` as an fp32 causal LM (raises `UnsupportedBase`)."""
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    )
    seconds = time.perf_counter() - started
    return from_model(model, path, load_seconds=seconds)


def from_model(model: PreTrainedModel, path: Path, *, load_seconds: float = 0.0) -> LoadedBase:
    """Wrap a model already in memory that stands for the GGUF at `path` (tests, reuse)."""
    architecture = str(model.config.model_type)
    if architecture not in SUPPORTED:
        raise UnsupportedBase(
            f"{path}: architecture {architecture!r}; supported: {sorted(SUPPORTED)}"
        )
    # The engine's default model id is the file's stem too.
    return LoadedBase(model, path, file_sha256(path), path.stem, load_seconds)
