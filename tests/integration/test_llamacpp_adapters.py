"""GGUF LoRA adapters in the real LlamaCppEngine: load while serving, apply per call, unload.

The adapters here are written directly with `gguf_lora` (random low-rank updates with
SmolLM2's real shapes), so these tests need no training; the one trained for real is in
test_flywheel_train_adapter.py.
"""

from __future__ import annotations

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


def random_adapter(path: Path, seed: int, *, scale: float = 0.08, layers: int = 30) -> Path:
    """A rank-4 adapter on every attention projection, large enough to change the output."""
    rng = np.random.default_rng(seed)
    pairs = {
        (layer, module): LoraPair(
            a=rng.normal(0, scale, (4, n_in)).astype(np.float32),
            b=rng.normal(0, scale, (n_out, 4)).astype(np.float32),
        )
        for layer in range(layers)
        for module, (n_in, n_out) in SHAPES.items()
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
