"""A LoRA adapter as a GGUF file llama.cpp loads (`llama_adapter_lora_init`), with numpy only.

What llama.cpp checks (src/llama-adapter.cpp): `general.type == "adapter"`,
`general.architecture` equal to the model's, `adapter.type == "lora"`; `adapter.lora.alpha`
(the update is scaled by alpha / rank, rank read from the tensors); a pair
`<base tensor>.lora_a` / `.lora_b` per adapted weight, named as the base model's tensor
(`blk.{i}.attn_q.weight.lora_a`), with `lora_a` of ggml shape [n_in, r] and `lora_b` of
[r, n_out] — in numpy's row-major order (r, n_in) and (n_out, r), exactly peft's `lora_A`
and `lora_B` weights — and the model tensor [n_in, n_out]. This is the layout llama.cpp's
own `convert_lora_to_gguf.py` writes.

**q/k rows.** llama.cpp's HF-to-GGUF converter permutes the rows of llama q and k
projections (it interleaves each head's two rotary halves, for its RoPE kernel), and
transformers undoes that when it loads a GGUF (`LlamaTensorProcessor._reverse_permute_weights`),
so the fp32 model we train on has HF's row order. llama.cpp adds `lora_b @ lora_a` to the
*permuted* weight, so `lora_b` of q and k must get the converter's permutation (rows only:
`lora_a` acts on the input side, which is not permuted). `permute_rows` is that permutation
(the converter's `LlamaModel.permute`); k uses the number of key/value heads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gguf
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
ExportDtype = Literal["float32", "float16"]

# peft/transformers module name -> llama.cpp tensor name within a block.
GGUF_MODULES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}


@dataclass(frozen=True)
class LoraPair:
    """One adapted weight: `a` of shape (rank, n_in), `b` of shape (n_out, rank) (peft's)."""

    a: Array
    b: Array


@dataclass(frozen=True)
class Heads:
    """Attention head counts of the base model (for the q/k row permutation)."""

    n_head: int
    n_head_kv: int


def permute_rows(weight: Array, n_head: int) -> Array:
    """HF row order -> llama.cpp row order for a q (n_head) or k (n_head_kv) projection.

    Within each head, rows [first half, second half] become interleaved pairs; `weight`'s
    rows are the projection's outputs (for a LoRA, `lora_b`).
    """
    rows = weight.shape[0]
    if rows % (2 * n_head):
        raise ValueError(f"{rows} rows do not split into {n_head} heads of two halves")
    shaped = weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
    return np.ascontiguousarray(shaped.swapaxes(1, 2).reshape(weight.shape))


def gguf_tensors(pairs: Mapping[tuple[int, str], LoraPair], heads: Heads) -> dict[str, Array]:
    """The GGUF tensors for adapted weights keyed by (layer, peft module name)."""
    tensors: dict[str, Array] = {}
    for (layer, module), pair in sorted(pairs.items()):
        if module not in GGUF_MODULES:
            raise ValueError(f"no llama.cpp tensor for module {module!r}")
        if pair.a.shape[0] != pair.b.shape[1]:
            raise ValueError(f"layer {layer} {module}: A {pair.a.shape} and B {pair.b.shape}")
        b = pair.b
        if module == "q_proj":
            b = permute_rows(b, heads.n_head)
        elif module == "k_proj":
            b = permute_rows(b, heads.n_head_kv)
        name = f"blk.{layer}.{GGUF_MODULES[module]}.weight"
        tensors[f"{name}.lora_a"] = np.ascontiguousarray(pair.a, dtype=np.float32)
        tensors[f"{name}.lora_b"] = np.ascontiguousarray(b, dtype=np.float32)
    return tensors


def write_gguf_lora(
    path: Path,
    tensors: Mapping[str, Array],
    *,
    architecture: str,
    alpha: float,
    name: str,
    dtype: ExportDtype = "float32",
) -> None:
    """Write `tensors` as a LoRA adapter for `architecture` models, stored as `dtype`
    (llama.cpp applies F16 LoRA tensors as it applies F32 ones, at half the file)."""
    writer = gguf.GGUFWriter(str(path), arch=architecture)  # writes general.architecture
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_name(name)
    for tensor_name, data in tensors.items():
        writer.add_tensor(tensor_name, data.astype(np.float16) if dtype == "float16" else data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
