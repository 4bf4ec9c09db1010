"""SGLangEngine against a real SGLang server on a GPU machine.

Start a server (for example `python -m sglang.launch_server --model-path
HuggingFaceTB/SmolLM2-135M-Instruct --port 30000`), then run
`SKIFF_SGLANG_URL=http://127.0.0.1:30000 SKIFF_SGLANG_MODEL=HuggingFaceTB/SmolLM2-135M-Instruct
pytest -m gpu`. Without SKIFF_SGLANG_URL every test here is skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skiff_contracts.domains import FlightsDraft
from skiff_inference.engine import ChatMessage
from skiff_inference.sglang import SGLangEngine

SGLANG_URL = os.environ.get("SKIFF_SGLANG_URL")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not SGLANG_URL, reason="needs a running SGLang server: set SKIFF_SGLANG_URL (and _MODEL)"
    ),
]

SCHEMA: dict[str, Any] = FlightsDraft.model_json_schema()
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "Extract the flight request as JSON. Use null when not given."},
    {"role": "user", "content": "Fly me from Boston to Denver on May 2, two of us."},
]


@pytest.fixture
async def sglang_engine() -> AsyncIterator[SGLangEngine]:
    assert SGLANG_URL is not None
    model = os.environ.get("SKIFF_SGLANG_MODEL", "default")
    engine = SGLangEngine(SGLANG_URL, model, timeout_s=120.0)
    yield engine
    await engine.aclose()


async def test_health(sglang_engine: SGLangEngine) -> None:
    assert await sglang_engine.ready()


async def test_schema_valid_output_with_logprobs(sglang_engine: SGLangEngine) -> None:
    await sglang_engine.warm_up(MESSAGES, SCHEMA)
    generation = await sglang_engine.generate_json(MESSAGES, SCHEMA, max_tokens=200)
    assert generation.json_error is None, generation.raw
    FlightsDraft.model_validate(generation.value)
    assert generation.tokens_in > 0
    assert len(generation.token_logprobs) == generation.tokens_out > 0
    assert "".join(t.text for t in generation.token_logprobs) == generation.raw
