"""SGLangEngine: /generate bodies, response parsing, adapters, health; ChatML; token texts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from skiff_inference.chat_template import render_chatml
from skiff_inference.engine import ChatMessage, EngineError
from skiff_inference.output import align_token_texts, parse_json_output, texts_from_pieces
from skiff_inference.sglang import SGLangEngine

SCHEMA: dict[str, Any] = {
    "title": "FlightsDraft",
    "type": "object",
    "properties": {"origin": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
}
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "Extract the flight."},
    {"role": "user", "content": "From Zürich."},
]
RAW = '{"origin": "Zürich"}'
# What SGLang returns per output token: [logprob, token_id, text]. Each token is decoded
# on its own, so the two halves of "ü" show as U+FFFD, and the stop token is included.
OUTPUT_TOKEN_LOGPROBS = [
    [-0.01, 90, '{"'],
    [-0.20, 91, "origin"],
    [-0.02, 92, '":'],
    [-0.03, 93, ' "'],
    [-0.50, 94, "Z"],
    [-0.60, 95, "\ufffd"],
    [-0.70, 96, "\ufffd"],
    [-0.10, 97, "rich"],
    [-0.04, 98, '"}'],
    [-0.05, 2, "<|im_end|>"],
]


def generate_response(
    text: str = RAW, finish: dict[str, Any] | None = None, logprobs: list[Any] | None = None
) -> dict[str, Any]:
    entries = OUTPUT_TOKEN_LOGPROBS if logprobs is None else logprobs
    return {
        "text": text,
        "meta_info": {
            "id": "r1",
            "finish_reason": finish or {"type": "stop", "matched": 2},
            "prompt_tokens": 27,
            "completion_tokens": len(entries),
            "cached_tokens": 20,
            "output_token_logprobs": entries,
        },
    }


class Recorder:
    """A MockTransport handler that records requests and answers via `respond`."""

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
) -> tuple[SGLangEngine, Recorder]:
    recorder = Recorder(respond)
    engine = SGLangEngine("http://gpu.test:30000/", "qwen", transport=httpx.MockTransport(recorder))
    return engine, recorder


def ok(payload: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(200, json=payload)


def test_chatml_rendering() -> None:
    assert render_chatml(MESSAGES) == (
        "<|im_start|>system\nExtract the flight.<|im_end|>\n"
        "<|im_start|>user\nFrom Zürich.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_chatml([]) == "<|im_start|>assistant\n"


async def test_generate_request_body() -> None:
    engine, recorder = engine_with(ok(generate_response()))
    await engine.generate_json(
        MESSAGES, SCHEMA, adapter="flights-v3", max_tokens=96, temperature=0.0
    )
    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", "http://gpu.test:30000/generate")
    body = recorder.body
    assert body["text"] == render_chatml(MESSAGES)
    assert body["lora_path"] == "flights-v3"
    assert body["return_logprob"] is True
    assert body["return_text_in_logprobs"] is True
    sampling = body["sampling_params"]
    assert isinstance(sampling["json_schema"], str), "SGLang takes the schema as a JSON string"
    assert json.loads(sampling["json_schema"]) == SCHEMA
    assert sampling["temperature"] == 0.0
    assert sampling["max_new_tokens"] == 96
    assert "sampling_seed" not in sampling


async def test_no_adapter_and_a_seed() -> None:
    engine, recorder = engine_with(ok(generate_response()))
    await engine.generate_json(MESSAGES, SCHEMA, seed=11)
    assert recorder.body["lora_path"] is None
    assert recorder.body["sampling_params"]["sampling_seed"] == 11


async def test_response_parsing_and_logprobs() -> None:
    engine, _ = engine_with(ok(generate_response()))
    generation = await engine.generate_json(MESSAGES, SCHEMA, adapter="flights-v3")
    assert generation.value == {"origin": "Zürich"}
    assert generation.json_error is None
    assert (generation.tokens_in, generation.tokens_out) == (27, 10)
    assert (generation.engine, generation.model, generation.adapter) == (
        "sglang",
        "qwen",
        "flights-v3",
    )
    texts = [t.text for t in generation.token_logprobs]
    assert len(texts) == generation.tokens_out
    assert "".join(texts) == generation.raw == RAW
    assert texts[4:8] == ["Z", "", "ü", "rich"]
    assert texts[-1] == "", "the stop token produced no text"
    assert [t.logprob for t in generation.token_logprobs] == [e[0] for e in OUTPUT_TOKEN_LOGPROBS]


async def test_null_logprob_and_missing_texts() -> None:
    entries = [[None, 90, None], [-0.3, 91, None]]
    engine, _ = engine_with(ok(generate_response(text="{}", logprobs=entries)))
    generation = await engine.generate_json(MESSAGES, SCHEMA)
    assert math.isnan(generation.token_logprobs[0].logprob)
    assert "".join(t.text for t in generation.token_logprobs) == "{}"


async def test_invalid_json_is_a_value_not_an_exception() -> None:
    truncated = '{"origin": "Zür'
    engine, _ = engine_with(
        ok(generate_response(text=truncated, finish={"type": "length", "length": 5}))
    )
    generation = await engine.generate_json(MESSAGES, SCHEMA, max_tokens=5)
    assert generation.value is None
    assert generation.raw == truncated
    assert generation.json_error is not None
    assert "max_tokens" in generation.json_error


@pytest.mark.parametrize(
    ("status", "transient"), [(400, False), (404, False), (500, True), (503, True)]
)
async def test_http_errors(status: int, transient: bool) -> None:
    engine, _ = engine_with(
        lambda _r: httpx.Response(status, json={"error": {"message": "bad schema"}})
    )
    with pytest.raises(EngineError) as caught:
        await engine.generate_json(MESSAGES, SCHEMA)
    assert caught.value.transient is transient


async def test_connection_refused_is_transient() -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    engine, _ = engine_with(refuse)
    with pytest.raises(EngineError) as caught:
        await engine.generate_json(MESSAGES, SCHEMA)
    assert caught.value.transient is True


async def test_bad_response_shape_is_not_transient() -> None:
    engine, _ = engine_with(ok({"text": "{}"}))
    with pytest.raises(EngineError) as caught:
        await engine.generate_json(MESSAGES, SCHEMA)
    assert caught.value.transient is False


@pytest.mark.parametrize(("status", "expected"), [(200, True), (503, False)])
async def test_ready_reads_health(status: int, expected: bool) -> None:
    engine, recorder = engine_with(lambda _r: httpx.Response(status, text=""))
    assert await engine.ready() is expected
    assert (recorder.requests[0].method, recorder.requests[0].url.path) == ("GET", "/health")


async def test_ready_is_false_when_unreachable() -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    engine, _ = engine_with(refuse)
    assert await engine.ready() is False


async def test_load_and_unload_adapter() -> None:
    engine, recorder = engine_with(
        ok({"success": True, "error_message": "", "loaded_adapters": {}})
    )
    await engine.load_adapter("flights-v3", "/adapters/flights-v3")
    assert recorder.requests[-1].url.path == "/load_lora_adapter"
    assert recorder.body == {"lora_name": "flights-v3", "lora_path": "/adapters/flights-v3"}
    await engine.unload_adapter("flights-v3")
    assert recorder.requests[-1].url.path == "/unload_lora_adapter"
    assert recorder.body == {"lora_name": "flights-v3"}
    await engine.aclose()


async def test_failed_adapter_load_is_not_transient() -> None:
    failure = {"success": False, "error_message": "rank 64 exceeds --max-lora-rank 16"}
    engine, _ = engine_with(lambda _r: httpx.Response(400, json=failure))
    with pytest.raises(EngineError, match="max-lora-rank") as caught:
        await engine.load_adapter("big", "/adapters/big")
    assert caught.value.transient is False


async def test_warm_up_is_a_one_token_call() -> None:
    engine, recorder = engine_with(ok(generate_response(text="{", logprobs=[[-0.1, 90, "{"]])))
    await engine.warm_up(MESSAGES, SCHEMA)
    assert recorder.body["sampling_params"]["max_new_tokens"] == 1


def test_align_token_texts_edge_cases() -> None:
    assert align_token_texts("", []) == []
    assert align_token_texts("ab", ["a", "b", "</s>"]) == ["a", "b", ""]
    # A server that shows nothing for split characters: the gap goes to the token before.
    assert align_token_texts("Zürich", ["Z", "", "", "rich"]) == ["Z", "", "ü", "rich"]
    # Texts that cannot be placed at all still concatenate to the raw output.
    assert "".join(align_token_texts("xyz", ["?", "?"])) == "xyz"


def test_texts_from_pieces_and_parse() -> None:
    assert texts_from_pieces([b"Z", b"\xc3", b"\xbcrich"]) == ["Z", "", "ürich"]
    assert texts_from_pieces([b"a", b"\xc3"]) == ["a", "\ufffd"]
    assert parse_json_output('{"a": 1}') == ({"a": 1}, None)
    value, error = parse_json_output("{", hit_token_limit=True)
    assert value is None
    assert error is not None
    assert "max_tokens" in error
