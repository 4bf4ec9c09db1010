"""OpenAICompatEngine against a real llama-cpp-python server running the bundled SmolLM2."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from skiff_contracts.domains import FlightsDraft
from skiff_inference.engine import ChatMessage, EngineError
from skiff_inference.model_files import bundled_model_path
from skiff_inference.openai_compat import OpenAICompatEngine

from .llama_server import MODEL_ALIAS, llama_cpp_server

pytestmark = pytest.mark.model

SCHEMA: dict[str, Any] = FlightsDraft.model_json_schema()
MESSAGES: list[ChatMessage] = [
    {
        "role": "system",
        "content": "Extract the flight request as JSON. Copy places and dates as written.",
    },
    {"role": "user", "content": "Fly me from Boston to Denver on May 2, two of us."},
]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with llama_cpp_server(bundled_model_path(), threads=1) as url:
        yield url


@pytest.fixture
async def json_object_engine(server_url: str) -> AsyncIterator[OpenAICompatEngine]:
    engine = OpenAICompatEngine(
        server_url, MODEL_ALIAS, response_format="json_object", timeout_s=120.0
    )
    yield engine
    await engine.aclose()


async def test_schema_valid_output_and_usage(json_object_engine: OpenAICompatEngine) -> None:
    generation = await json_object_engine.generate_json(MESSAGES, SCHEMA, max_tokens=200)
    assert generation.json_error is None, generation.raw
    FlightsDraft.model_validate(generation.value)
    assert generation.tokens_in > 0
    assert generation.tokens_out > 0
    assert len(generation.token_logprobs) == generation.tokens_out
    assert "".join(t.text for t in generation.token_logprobs) == generation.raw
    assert all(t.logprob <= 0.0 for t in generation.token_logprobs)
    assert (generation.engine, generation.model) == ("openai", MODEL_ALIAS)


async def test_server_rejects_the_openai_envelope(server_url: str) -> None:
    # llama-cpp-python validates response_format.type against Literal["text", "json_object"]
    # and reports the validation error as HTTP 500 (so it maps to a transient error).
    engine = OpenAICompatEngine(server_url, MODEL_ALIAS, response_format="json_schema")
    try:
        with pytest.raises(EngineError) as caught:
            await engine.generate_json(MESSAGES, SCHEMA, max_tokens=4)
    finally:
        await engine.aclose()
    assert "HTTP 500" in caught.value.message
    assert "literal_error" in caught.value.message
