"""GGUF LoRA adapters in the real LlamaCppEngine: load while serving, apply per call, unload.

The adapters here are written directly with `gguf_lora` (random low-rank updates with
SmolLM2's real shapes), so these tests need no training; the one trained for real is in
test_flywheel_train_adapter.py.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from skiff_contracts.domains import DRAFTS
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION, extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_flywheel.gguf_lora import Heads, LoraPair, gguf_tensors, write_gguf_lora
from skiff_inference.engine import EngineError
from skiff_inference.llamacpp import LlamaCppEngine

pytestmark = pytest.mark.model

SCHEMA = decoding_schema(DRAFTS["flights"])
MESSAGES = extraction_messages(
    "flights",
    "Two tickets from Boston to Denver on March 3rd.",
    prompt_version=ADAPTER_PROMPT_VERSION,
)
HEADS = Heads(n_head=9, n_head_kv=3)
SHAPES = {"q_proj": (576, 576), "k_proj": (576, 192), "v_proj": (576, 192), "o_proj": (576, 576)}
MLP = {"gate_proj": (576, 1536), "up_proj": (576, 1536), "down_proj": (1536, 576)}


def random_adapter(
    path: Path, seed: int, *, scale: float = 0.08, rank: int = 4, mlp: bool = False
) -> Path:
    """A random adapter on every attention projection (and the MLP), large enough to change
    the output."""
    rng = np.random.default_rng(seed)
    shapes = {**SHAPES, **MLP} if mlp else SHAPES
    pairs = {
        (layer, module): LoraPair(
            a=rng.normal(0, scale, (rank, n_in)).astype(np.float32),
            b=rng.normal(0, scale, (n_out, rank)).astype(np.float32),
        )
        for layer in range(30)
        for module, (n_in, n_out) in shapes.items()
    }
    write_gguf_lora(path, gguf_tensors(pairs, HEADS), architecture="llama", alpha=4, name="test")
    return path


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[LlamaCppEngine]:
    served = LlamaCppEngine(threads=1)
    yield served
    await served.aclose()


async def test_an_adapter_changes_the_output_and_no_adapter_is_the_base(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    base = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120)
    await engine.load_adapter("noisy", random_adapter(tmp_path / "a.gguf", seed=1))
    adapted = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120, adapter="noisy")
    again = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120)
    assert adapted.adapter == "noisy" and base.adapter is None
    assert [t.logprob for t in adapted.token_logprobs] != [t.logprob for t in base.token_logprobs]
    assert again.raw == base.raw
    assert [t.logprob for t in again.token_logprobs] == [t.logprob for t in base.token_logprobs]
    await engine.unload_adapter("noisy")


async def test_no_prefix_computed_under_other_weights_is_reused(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    await engine.load_adapter("noisy", random_adapter(tmp_path / "a.gguf", seed=2))
    await engine.generate_json(MESSAGES, SCHEMA, max_tokens=20)  # the base's prefix cached
    switched = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=60, adapter="noisy")
    assert engine.last_decoded is not None
    prompt = len(engine.prompt_tokens(MESSAGES))
    assert engine.last_decoded.prompt_evaluated == prompt, "the switch re-evaluates the prompt"
    warm = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=60, adapter="noisy")
    assert engine.last_decoded.prompt_evaluated < prompt // 4, "same adapter: prefix reused"
    await engine.forget_prefix()
    cold = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=60, adapter="noisy")
    for other in (warm, cold):
        assert other.raw == switched.raw
        assert [t.logprob for t in other.token_logprobs] == pytest.approx(
            [t.logprob for t in switched.token_logprobs], abs=1e-4
        )
    await engine.unload_adapter("noisy")


async def test_reloading_a_name_serves_the_new_weights_without_a_restart(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    await engine.load_adapter("v", random_adapter(tmp_path / "one.gguf", seed=3))
    first = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=60, adapter="v")
    await engine.load_adapter("v", random_adapter(tmp_path / "two.gguf", seed=4))
    second = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=60, adapter="v")
    assert engine.adapters == ("v",)
    assert [t.logprob for t in first.token_logprobs] != [t.logprob for t in second.token_logprobs]
    await engine.load_adapter("v", tmp_path / "one.gguf")
    back = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=60, adapter="v")
    assert back.raw == first.raw
    await engine.unload_adapter("v")


async def test_unknown_names_and_bad_files_are_permanent_errors(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    with pytest.raises(EngineError) as unknown:
        await engine.generate_json(MESSAGES, SCHEMA, max_tokens=5, adapter="nobody")
    assert unknown.value.transient is False
    with pytest.raises(EngineError) as missing:
        await engine.load_adapter("x", tmp_path / "absent.gguf")
    assert missing.value.transient is False
    wrong = tmp_path / "wrong.gguf"
    pairs = {
        (0, "q_proj"): LoraPair(np.zeros((4, 100), np.float32), np.zeros((576, 4), np.float32))
    }
    write_gguf_lora(wrong, gguf_tensors(pairs, HEADS), architecture="llama", alpha=4, name="x")
    with pytest.raises(EngineError) as refused:
        await engine.load_adapter("x", wrong)
    assert refused.value.transient is False
    with pytest.raises(EngineError):
        await engine.unload_adapter("x")
    assert engine.adapters == ()
    base = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=5)
    assert base.adapter is None


@pytest.mark.slow
async def test_measure_adapter_costs(engine: LlamaCppEngine, tmp_path: Path) -> None:
    """Figures for libs/inference/README.md, printed as one JSON line (`-m slow -s`).

    A rank-8 adapter on all seven projections (what `skiff flywheel train` exports by
    default; the weights' values do not change the cost), the ft1 flights prompt, 1 thread.
    """
    path = random_adapter(tmp_path / "r8.gguf", seed=5, scale=0.01, rank=8, mlp=True)
    started = time.perf_counter()
    await engine.load_adapter("r8", path)
    load_ms = (time.perf_counter() - started) * 1000
    calls: dict[str, list[float]] = {"base": [], "adapter": [], "switch": [], "prompt": []}
    for _ in range(5):
        await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120)
        base = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120)
        switched = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120, adapter="r8")
        assert engine.last_decoded is not None
        calls["prompt"].append(engine.last_decoded.first_token_ms)
        warm = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=120, adapter="r8")
        calls["base"].append(base.latency_ms / max(1, base.tokens_out))
        calls["adapter"].append(warm.latency_ms / max(1, warm.tokens_out))
        calls["switch"].append(switched.latency_ms - warm.latency_ms)
    started = time.perf_counter()
    await engine.unload_adapter("r8")
    unload_ms = (time.perf_counter() - started) * 1000
    figures = {
        "adapter_file_mb": round(path.stat().st_size / 1e6, 2),
        "load_ms": round(load_ms, 1),
        "unload_ms": round(unload_ms, 2),
        "ms_per_output_token_base": round(statistics.median(calls["base"]), 1),
        "ms_per_output_token_adapter": round(statistics.median(calls["adapter"]), 1),
        "switch_extra_ms": round(statistics.median(calls["switch"]), 0),
        "cold_prompt_ms_with_adapter": round(statistics.median(calls["prompt"]), 0),
        "prompt_tokens": len(engine.prompt_tokens(MESSAGES)),
    }
    print(json.dumps(figures))
    assert figures["ms_per_output_token_adapter"] < 3 * figures["ms_per_output_token_base"]
