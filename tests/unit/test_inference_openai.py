"""OpenAICompatEngine: request bodies, response parsing and error mapping (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from skiff_inference.engine import ChatMessage, EngineError
from skiff_inference.factory import EngineSettings, build_engine
from skiff_inference.openai_compat import OpenAICompatEngine
from skiff_inference.sglang import SGLangEngine

SCHEMA: dict[str, Any] = {
    "title": "Flights Draft",
    "type": "object",
    "properties": {"origin": {"type": "string"}, "passengers": {"type": "integer"}},
    "additionalProperties": False,
}
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "Extract the flight."},
    {"role": "user", "content": "Boston to Zürich, two of us."},
]
RAW = '{"origin": "Zürich", "passengers": 2}'


def completion(
    content: str | None = RAW,
    logprobs: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None if logprobs is None else {"content": logprobs},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38},
    }


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed response."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.requests[-1].content))


def engine_with(
    respond: Callable[[httpx.Request], httpx.Response],
    *,
    base_url: str = "http://llm.test",
    **kwargs: Any,
) -> tuple[OpenAICompatEngine, Recorder]:
    recorder = Recorder(respond)
    engine = OpenAICompatEngine(
        base_url, "big-model", transport=httpx.MockTransport(recorder), **kwargs
    )
    return engine, recorder


def ok(payload: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(200, json=payload)


async def test_json_schema_request_body() -> None:
    engine, recorder = engine_with(ok(completion()), api_key="sk-test")
    await engine.generate_json(MESSAGES, SCHEMA, max_tokens=64, temperature=0.2, seed=7)
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert recorder.body == {
        "model": "big-model",
        "messages": [dict(m) for m in MESSAGES],
        "temperature": 0.2,
        "max_tokens": 64,
        "logprobs": True,
        "top_logprobs": 0,
        "seed": 7,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Flights_Draft", "schema": SCHEMA, "strict": True},
        },
    }


async def test_json_object_dialect_for_llama_cpp_server() -> None:
    engine, recorder = engine_with(ok(completion()), response_format="json_object")
    await engine.generate_json(MESSAGES, SCHEMA)
    body = recorder.body
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert body["repeat_penalty"] == 1.0
    assert "seed" not in body
    assert "authorization" not in recorder.requests[0].headers


async def test_adapter_becomes_model_suffix_and_v1_base_url_is_not_doubled() -> None:
    engine, recorder = engine_with(ok(completion()), base_url="http://llm.test/v1/")
    generation = await engine.generate_json(MESSAGES, SCHEMA, adapter="flights-v3")
    assert str(recorder.requests[0].url) == "http://llm.test/v1/chat/completions"
    assert recorder.body["model"] == "big-model:flights-v3"
    assert generation.adapter == "flights-v3"
    assert generation.model == "big-model"


async def test_response_parsing_with_logprobs() -> None:
    tokens = [
        '{"',
        "origin",
        '":',
        ' "',
        "Z",
        "ü",
        "rich",
        '",',
        ' "',
        "passengers",
        '":',
        " 2",
        "}",
    ]
    entries = [{"token": t, "logprob": -0.1 * i, "top_logprobs": []} for i, t in enumerate(tokens)]
    engine, _ = engine_with(ok(completion(logprobs=entries)))
    generation = await engine.generate_json(MESSAGES, SCHEMA)
    assert generation.value == {"origin": "Zürich", "passengers": 2}
    assert generation.json_error is None
    assert generation.raw == RAW
    assert (generation.tokens_in, generation.tokens_out) == (31, 7)
    assert generation.engine == "openai"
    assert [t.text for t in generation.token_logprobs] == tokens
    assert generation.token_logprobs[5].logprob == pytest.approx(-0.5)
    assert generation.latency_ms >= 0


async def test_bytes_rebuild_a_character_split_across_tokens() -> None:
    # "ü" is two UTF-8 bytes; a server that splits it shows each half as U+FFFD in
    # `token` but gives the exact bytes.
    pieces = [b'{"origin": "Z', b"\xc3", b"\xbc", b'rich", "passengers": 2}']
    entries = [
        {"token": p.decode("utf-8", "replace"), "bytes": list(p), "logprob": -1.0} for p in pieces
    ]
    engine, _ = engine_with(ok(completion(logprobs=entries)))
    generation = await engine.generate_json(MESSAGES, SCHEMA)
    texts = [t.text for t in generation.token_logprobs]
    assert "".join(texts) == RAW
    assert texts[1:3] == ["", "ü"]


async def test_invalid_json_is_a_value_not_an_exception() -> None:
    engine, _ = engine_with(ok(completion(content='{"origin": "Bos', finish_reason="length")))
    generation = await engine.generate_json(MESSAGES, SCHEMA)
    assert generation.value is None
    assert generation.json_error is not None
    assert "max_tokens" in generation.json_error
    assert generation.token_logprobs == ()


async def test_missing_content_gives_empty_raw() -> None:
    engine, _ = engine_with(ok(completion(content=None)))
    generation = await engine.generate_json(MESSAGES, SCHEMA)
    assert generation.raw == ""
    assert generation.value is None
    assert generation.json_error


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
async def test_http_status_mapping(status: int, transient: bool) -> None:
    engine, _ = engine_with(lambda _r: httpx.Response(status, json={"error": {"message": "no"}}))
    with pytest.raises(EngineError) as caught:
        await engine.generate_json(MESSAGES, SCHEMA)
    assert caught.value.transient is transient
    assert str(status) in caught.value.message


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")],
)
async def test_transport_failures_are_transient(error: Exception) -> None:
    def fail(_request: httpx.Request) -> httpx.Response:
        raise error

    engine, _ = engine_with(fail)
    with pytest.raises(EngineError) as caught:
        await engine.generate_json(MESSAGES, SCHEMA)
    assert caught.value.transient is True


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, text="<html>proxy</html>"), httpx.Response(200, json={"choices": []})],
)
async def test_unexpected_success_bodies_are_not_transient(response: httpx.Response) -> None:
    engine, _ = engine_with(lambda _r: response)
    with pytest.raises(EngineError) as caught:
        await engine.generate_json(MESSAGES, SCHEMA)
    assert caught.value.transient is False


async def test_warm_up_is_a_one_token_call() -> None:
    engine, recorder = engine_with(ok(completion(content="{")))
    await engine.warm_up(MESSAGES, SCHEMA)
    assert recorder.body["max_tokens"] == 1
    await engine.aclose()


def test_settings_require_url_and_model_for_http_engines() -> None:
    with pytest.raises(ValidationError, match="SKIFF_ENGINE__URL"):
        EngineSettings(kind="sglang", model="m")
    with pytest.raises(ValidationError, match="model"):
        EngineSettings(kind="openai", url="http://x")
    assert EngineSettings().kind == "llamacpp"


def test_settings_are_built_into_http_engines() -> None:
    openai = build_engine(
        EngineSettings(kind="openai", url="http://x/v1", model="gpt", api_key=SecretStr("sk-1"))
    )
    assert isinstance(openai, OpenAICompatEngine)
    assert (openai.kind, openai.model) == ("openai", "gpt")
    sglang = build_engine(EngineSettings(kind="sglang", url="http://gpu:30000", model="qwen"))
    assert isinstance(sglang, SGLangEngine)
    assert sglang.kind == "sglang"
    unchecked = EngineSettings.model_construct(kind="sglang", url=None, model="qwen")
    with pytest.raises(EngineError) as caught:
        build_engine(unchecked)
    assert caught.value.transient is False
