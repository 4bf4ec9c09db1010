"""OpenTelemetry for engines: a span per model call, and trace context on HTTP engine calls.

`TracedEngine` wraps any `Engine` and records each `generate_json` as one CLIENT span
following the GenAI semantic conventions (development status; attributes as of semconv
1.37): span `"chat {gen_ai.request.model}"`, `gen_ai.operation.name`, `gen_ai.provider.name`
(and the older `gen_ai.system`, which current backends still read), request parameters,
token usage and `gen_ai.output.type="json"`. Prompt and completion text go on the span only
with `capture_content=True` (`SKIFF_TRACE_CONTENT=true`): they are user data.

`propagate_trace_context(client)` makes an `httpx.AsyncClient` send the current W3C
context (`traceparent`) with every request, so an SGLang or LLM server that traces joins
the trip's trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from skiff_inference.engine import ChatMessage, Engine, EngineError, Generation

TRACER_NAME = "skiff_inference"

# `gen_ai.provider.name` by engine kind: the in-process engine is llama.cpp itself; the
# OpenAI-compatible engine speaks OpenAI's API whatever serves it.
PROVIDERS = {"llamacpp": "llama.cpp", "openai": "openai", "sglang": "sglang"}

OPERATION = "chat"


class TracedEngine:
    """An `Engine` that traces every call of the engine it wraps, and otherwise is that engine.

    `inner` is the wrapped engine, for what is not part of the protocol (SGLang's `ready`).
    Adapter loading and unloading are delegated as they are.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        capture_content: bool = False,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.inner = engine
        self.capture_content = capture_content
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: Mapping[str, Any],
        *,
        adapter: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        """The wrapped engine's `generate_json`, inside a `chat {model}` span."""
        provider = PROVIDERS.get(self.inner.kind, self.inner.kind)
        attributes: dict[str, str | int | float] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": self.inner.model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.output.type": "json",
        }
        if seed is not None:
            attributes["gen_ai.request.seed"] = seed
        if adapter is not None:
            attributes["skiff.model.adapter"] = adapter
        with self._tracer.start_as_current_span(
            f"{OPERATION} {self.inner.model}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if self.capture_content and span.is_recording():
                _record_input(span, messages)
            try:
                generation = await self.inner.generate_json(
                    messages,
                    schema,
                    adapter=adapter,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                )
            except Exception as error:
                _record_error(span, error)
                raise
            if span.is_recording():
                _record_generation(span, generation, capture_content=self.capture_content)
            return generation

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """The wrapped engine's, untraced (it is a deployment step, not a model call)."""
        await self.inner.load_adapter(name, path)

    async def unload_adapter(self, name: str) -> None:
        """The wrapped engine's, untraced."""
        await self.inner.unload_adapter(name)

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        """Not traced: it runs at start-up, outside any trip."""
        await self.inner.warm_up(messages, schema)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _record_input(span: Span, messages: Sequence[ChatMessage]) -> None:
    system = [{"type": "text", "content": m["content"]} for m in messages if m["role"] == "system"]
    chat = [
        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
        for m in messages
        if m["role"] != "system"
    ]
    if system:
        span.set_attribute("gen_ai.system_instructions", json.dumps(system, ensure_ascii=False))
    span.set_attribute("gen_ai.input.messages", json.dumps(chat, ensure_ascii=False))


def _record_generation(span: Span, generation: Generation, *, capture_content: bool) -> None:
    span.set_attribute("gen_ai.response.model", generation.model)
    span.set_attribute("gen_ai.usage.input_tokens", generation.tokens_in)
    span.set_attribute("gen_ai.usage.output_tokens", generation.tokens_out)
    span.set_attribute("skiff.engine.latency_ms", generation.latency_ms)
    if generation.json_error is not None:
        # Invalid output is a value the caller escalates, not an engine error: the span
        # stays OK and says why (the message quotes positions, never the text).
        span.set_attribute("skiff.output.json_error", generation.json_error)
    if capture_content:
        # `Generation` does not carry the server's finish reason; a parse failure at the
        # token limit is the one case known to be "length".
        stopped_at_limit = "max_tokens" in (generation.json_error or "")
        output = [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": generation.raw}],
                "finish_reason": "length" if stopped_at_limit else "stop",
            }
        ]
        span.set_attribute("gen_ai.output.messages", json.dumps(output, ensure_ascii=False))


def _record_error(span: Span, error: Exception) -> None:
    span.record_exception(error)
    span.set_attribute("error.type", type(error).__qualname__)
    if isinstance(error, EngineError):
        span.set_attribute("skiff.engine.transient", error.transient)
        span.set_status(Status(StatusCode.ERROR, error.message))
    else:
        span.set_status(Status(StatusCode.ERROR, repr(error)))


async def _inject_trace_context(request: httpx.Request) -> None:
    propagate.inject(request.headers)


def propagate_trace_context(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Add a request hook that puts the current trace context (`traceparent`, `tracestate`,
    baggage — per `OTEL_PROPAGATORS`) into every request's headers; returns `client`."""
    hooks = client.event_hooks
    client.event_hooks = {
        "request": [*hooks.get("request", []), _inject_trace_context],
        "response": list(hooks.get("response", [])),
    }
    return client
