"""An engine for OpenAI-compatible chat-completions servers: the LLM tier, or SGLang/vLLM.

Two request dialects for the schema constraint:

* `json_schema` (OpenAI, SGLang, vLLM): `{"type": "json_schema", "json_schema": {"name",
  "schema", "strict": true}}`. OpenAI's strict mode additionally wants every property
  required and `additionalProperties: false`.
* `json_object` (llama-cpp-python's server): `{"type": "json_object", "schema": ...}`.
  That server validates `response_format` against a TypedDict whose `type` is
  `Literal["text", "json_object"]` (llama_cpp/llama_types.py,
  `ChatCompletionRequestResponseFormat`), so the OpenAI envelope is rejected.
  This dialect also sends `repeat_penalty: 1.0`, matching the in-process engine
  (the server's default is 1.1, which punishes copying spans from the prompt).
  Note that this server reports request-validation errors (such as the OpenAI
  envelope) as HTTP 500, which therefore map to a *transient* `EngineError`;
  `warm_up` at start-up is where such a misconfiguration shows.

An adapter is selected SGLang's way, as the model name `"{model}:{adapter}"`. The OpenAI API
has no call to load one: `load_adapter` and `unload_adapter` raise a non-transient
`EngineError` (load adapters on the server itself, e.g. SGLang's `/load_lora_adapter`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from skiff_inference.engine import ChatMessage, EngineError, Generation, TokenLogprob
from skiff_inference.http_transport import bad_shape, make_client, request_json
from skiff_inference.output import align_token_texts, parse_json_output, texts_from_pieces
from skiff_inference.traced import propagate_trace_context

ResponseFormat = Literal["json_schema", "json_object"]

_WHAT = "chat completion"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class OpenAICompatEngine:
    """`POST {base_url}/v1/chat/completions` with a JSON-schema response format and logprobs."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        response_format: ResponseFormat = "json_schema",
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`base_url` may end in `/v1` (the OpenAI SDK's convention) or not.

        `transport` replaces the network (tests pass an `httpx.MockTransport`).
        """
        root = base_url.rstrip("/")
        root = root.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._response_format = response_format
        self._client = propagate_trace_context(
            make_client(root, timeout_s=timeout_s, headers=headers, transport=transport)
        )

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
        """One chat completion constrained to `schema`; `latency_ms` is the HTTP round trip."""
        body = self.request_body(
            messages,
            schema,
            adapter=adapter,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
        )
        started = time.perf_counter()
        data = await request_json(
            self._client, "POST", "/v1/chat/completions", what=_WHAT, body=body
        )
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            return self._parse(data, adapter=adapter, latency_ms=latency_ms)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise bad_shape(_WHAT, exc) from exc

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """Not possible over the OpenAI API: raises a non-transient `EngineError`."""
        raise EngineError(
            f"the OpenAI-compatible engine cannot load adapters (asked to load {name!r} from "
            f"{path}); load it on the server and pass adapter={name!r}",
            transient=False,
        )

    async def unload_adapter(self, name: str) -> None:
        """Not possible over the OpenAI API: raises a non-transient `EngineError`."""
        raise EngineError(
            f"the OpenAI-compatible engine cannot unload adapters (asked for {name!r})",
            transient=False,
        )

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        """One one-token call: checks URL, key, model and schema, and primes the server's caches."""
        await self.generate_json(messages, schema, max_tokens=1)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def request_body(
        self,
        messages: Sequence[ChatMessage],
        schema: Mapping[str, Any],
        *,
        adapter: str | None,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> dict[str, Any]:
        """The JSON body sent for one call (public so its shape can be checked)."""
        body: dict[str, Any] = {
            "model": self.model if adapter is None else f"{self.model}:{adapter}",
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "logprobs": True,
            # llama-cpp-python's server computes logprobs only when `top_logprobs` is set
            # (its chat handler passes `top_logprobs if logprobs else None`); 0 is valid
            # everywhere and asks for no alternatives.
            "top_logprobs": 0,
            "response_format": self._format_for(schema),
        }
        if seed is not None:
            body["seed"] = seed
        if self._response_format == "json_object":
            body["repeat_penalty"] = 1.0
        return body

    def _format_for(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        if self._response_format == "json_object":
            return {"type": "json_object", "schema": dict(schema)}
        title = schema.get("title")
        name = _NAME_UNSAFE.sub("_", title)[:64] if isinstance(title, str) and title else "output"
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": dict(schema), "strict": True},
        }

    def _parse(self, data: Any, *, adapter: str | None, latency_ms: float) -> Generation:
        choice = data["choices"][0]
        raw = choice["message"].get("content") or ""
        entries = (choice.get("logprobs") or {}).get("content") or []
        usage = data.get("usage") or {}
        value, json_error = parse_json_output(
            raw, hit_token_limit=choice.get("finish_reason") == "length"
        )
        texts = align_token_texts(raw, _entry_texts(entries))
        return Generation(
            value=value,
            raw=raw,
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", len(entries))),
            token_logprobs=tuple(
                TokenLogprob(text, float(entry["logprob"]))
                for text, entry in zip(texts, entries, strict=True)
            ),
            latency_ms=latency_ms,
            engine=self.kind,
            model=self.model,
            adapter=adapter,
            json_error=json_error,
        )


def _entry_texts(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    # `bytes` (when every entry has it) rebuilds characters split across tokens exactly;
    # `token` alone shows such a split as U+FFFD or as nothing.
    if entries and all(isinstance(entry.get("bytes"), list) for entry in entries):
        return texts_from_pieces(bytes(entry["bytes"]) for entry in entries)
    return [str(entry.get("token") or "") for entry in entries]
