"""The GGUF LoRA export: names, shapes and metadata llama.cpp checks; the q/k row permutation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
transformers_gguf = pytest.importorskip("transformers.modeling_gguf_pytorch_utils")

from skiff_flywheel.gguf_lora import (  # noqa: E402
    GGUF_MODULES,
    Heads,
    LoraPair,
    gguf_tensors,
    permute_rows,
    write_gguf_lora,
)

HEADS = Heads(n_head=9, n_head_kv=3)
SHAPES = {  # SmolLM2-135M: (n_in, n_out) of each adapted projection
    "q_proj": (576, 576), "k_proj": (576, 192), "v_proj": (576, 192), "o_proj": (576, 576),
    "gate_proj": (576, 1536), "up_proj": (576, 1536), "down_proj": (1536, 576),
}  # fmt: skip
RANK = 8


def pairs(layers: int = 2) -> dict[tuple[int, str], LoraPair]:
    rng = np.random.default_rng(0)
    return {
        (layer, module): LoraPair(
            rng.normal(size=(RANK, n_in)).astype(np.float32),
            rng.normal(size=(n_out, RANK)).astype(np.float32),
        )
        for layer in range(layers)
        for module, (n_in, n_out) in SHAPES.items()
    }


def reverse_permute(weights: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """What transformers applies to q/k rows when it loads a llama GGUF."""
    processor = transformers_gguf.LlamaTensorProcessor(
        config={"num_attention_heads": n_head, "num_key_value_heads": n_head_kv}
    )
    result: np.ndarray = processor._reverse_permute_weights(weights, n_head, n_head_kv)
    return result


def test_tensor_names_and_numpy_shapes_are_llama_cpps() -> None:
    tensors = gguf_tensors(pairs(), HEADS)
    assert len(tensors) == 2 * 2 * len(SHAPES)
    for layer in range(2):
        for module, (n_in, n_out) in SHAPES.items():
            name = f"blk.{layer}.{GGUF_MODULES[module]}.weight"
            assert tensors[f"{name}.lora_a"].shape == (RANK, n_in)
            assert tensors[f"{name}.lora_b"].shape == (n_out, RANK)
            assert tensors[f"{name}.lora_a"].dtype == np.float32


def test_q_and_k_rows_get_the_converters_permutation_the_rest_do_not() -> None:
    source = pairs(layers=1)
    tensors = gguf_tensors(source, HEADS)
    for module in ("v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        name = f"blk.0.{GGUF_MODULES[module]}.weight"
        assert np.array_equal(tensors[f"{name}.lora_b"], source[(0, module)].b)
    for module, heads in (("q_proj", 9), ("k_proj", 3)):
        name = f"blk.0.{GGUF_MODULES[module]}.weight"
        b = tensors[f"{name}.lora_b"]
        assert not np.array_equal(b, source[(0, module)].b)
        # transformers' un-permutation of what we wrote gives back peft's rows exactly,
        # so llama.cpp's weight + our delta is the permuted (weight + peft delta).
        assert np.array_equal(reverse_permute(b, 9, heads), source[(0, module)].b)
        assert np.array_equal(tensors[f"{name}.lora_a"], source[(0, module)].a)


def test_the_permutation_interleaves_each_heads_two_halves() -> None:
    # One head of 4 rows: [r0, r1 | r2, r3] -> [r0, r2, r1, r3].
    rows = np.arange(8, dtype=np.float32).reshape(4, 2)
    assert permute_rows(rows, 1)[:, 0].tolist() == [0, 4, 2, 6]
    with pytest.raises(ValueError, match="heads"):
        permute_rows(np.zeros((6, 2), np.float32), 2)


def test_the_file_has_the_metadata_llama_cpp_checks(tmp_path: Path) -> None:
    path = tmp_path / "adapter.gguf"
    write_gguf_lora(path, gguf_tensors(pairs(1), HEADS), architecture="llama", alpha=16, name="t")
    reader = gguf.GGUFReader(str(path))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.architecture"] == "llama"
    assert fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0)
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    # ggml order (innermost first): lora_a [n_in, r], lora_b [r, n_out], as llama.cpp checks
    # against the base tensor's [n_in, n_out].
    assert shapes["blk.0.ffn_down.weight.lora_a"] == (1536, RANK)
    assert shapes["blk.0.ffn_down.weight.lora_b"] == (RANK, 576)
    assert shapes["blk.0.attn_k.weight.lora_b"] == (RANK, 192)
    assert {t.tensor_type.name for t in reader.tensors} == {"F32"}


def test_mismatched_pairs_and_unknown_modules_are_refused() -> None:
    bad = {(0, "q_proj"): LoraPair(np.zeros((4, 576), np.float32), np.zeros((576, 8), np.float32))}
    with pytest.raises(ValueError, match="A"):
        gguf_tensors(bad, HEADS)
    unknown = {(0, "lm_head"): LoraPair(np.zeros((4, 5), np.float32), np.zeros((5, 4), np.float32))}
    with pytest.raises(ValueError, match="lm_head"):
        gguf_tensors(unknown, HEADS)
