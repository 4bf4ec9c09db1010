"""Adapter loading across the `Engine` protocol: OpenAI-compatible refuses, traced delegates."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from skiff_inference.engine import EngineError
from skiff_inference.openai_compat import OpenAICompatEngine
from skiff_inference.sglang import SGLangEngine
from skiff_inference.traced import TracedEngine


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.url}")


async def test_the_openai_engine_cannot_load_adapters_and_says_so() -> None:
    engine = OpenAICompatEngine("http://llm", "m", transport=httpx.MockTransport(_refuse))
    with pytest.raises(EngineError) as loading:
        await engine.load_adapter("flights-ft", Path("/adapters/flights"))
    assert loading.value.transient is False and "server" in loading.value.message
    with pytest.raises(EngineError) as unloading:
        await engine.unload_adapter("flights-ft")
    assert unloading.value.transient is False
    await engine.aclose()


async def test_the_traced_engine_passes_adapter_calls_through() -> None:
    seen: list[tuple[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.read().decode()))
        return httpx.Response(200, json={"success": True})

    engine = TracedEngine(
        SGLangEngine("http://gpu", "base", transport=httpx.MockTransport(handler))
    )
    await engine.load_adapter("flights-ft", "/adapters/flights")
    await engine.unload_adapter("flights-ft")
    assert [path for path, _ in seen] == ["/load_lora_adapter", "/unload_lora_adapter"]
    assert '"lora_path": "/adapters/flights"' in str(seen[0][1]).replace('":"', '": "')
    await engine.aclose()
