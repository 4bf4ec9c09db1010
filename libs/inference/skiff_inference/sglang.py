"""The SGLang engine, on SGLang's native HTTP API: the production path on GPUs.

What the SGLang sources and docs say (sgl-project/sglang, read 2026-11):

* `POST /generate` takes `GenerateReqInput` (python/sglang/srt/managers/io_struct.py;
  docs/basic_usage/sampling_params.md): `text`, `sampling_params`, `return_logprob`,
  `return_text_in_logprobs`, `lora_path` (an adapter *name* once loaded dynamically).
  In `sampling_params`, `json_schema` is `Optional[str]`: the schema as a JSON *string*;
  only one of `json_schema` / `regex` / `ebnf` may be set. `max_new_tokens` defaults to 128.
* The response for one prompt is `{"text": ..., "meta_info": {...}}`; `meta_info` has
  `prompt_tokens`, `completion_tokens`, `cached_tokens`, `finish_reason` (`{"type":
  "stop" | "length", ...}`) and, with `return_logprob`, `output_token_logprobs`: a list of
  `[logprob, token_id, token_text]` (token_text is null unless `return_text_in_logprobs`),
  built by `TokenizerManager.detokenize_logprob_tokens`, which decodes each token on its
  own (`tokenizer.batch_decode`), so texts are reconciled with `text` here.
* `GET /health` answers 200 when the server is up (docs/basic_usage/native_api.ipynb).
* `POST /load_lora_adapter {"lora_name", "lora_path"}` and `POST /unload_lora_adapter
  {"lora_name"}` answer 200 on success and 400 with `{"success": false, "error_message"}`
  otherwise (http_server.py; docs/advanced_features/lora.ipynb). Start the server with
  `--enable-lora --max-lora-rank R --lora-target-modules ...` to load adapters later.
* A per-request seed is `sampling_params.sampling_seed` in recent versions; it is sent
  only when a seed is given, so servers that predate it still accept default calls.

The prompt is rendered here (ChatML), so a fixed system prompt gives the same text
prefix on every call and RadixAttention reuses its KV cache.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from skiff_inference.chat_template import render_chatml
from skiff_inference.engine import ChatMessage, EngineError, Generation, TokenLogprob
from skiff_inference.http_transport import bad_shape, make_client, request_json
from skiff_inference.output import align_token_texts, parse_json_output
from skiff_inference.traced import propagate_trace_context

ChatTemplate = Literal["chatml"]

_TEMPLATES: dict[str, Callable[[Sequence[ChatMessage]], str]] = {"chatml": render_chatml}


class SGLangEngine:
    """`POST {base_url}/generate` with `sampling_params.json_schema`, logprobs and `lora_path`."""

    kind = "sglang"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        chat_template: ChatTemplate = "chatml",
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`model` names the served base model in every `Generation`; SGLang serves one.

        `transport` replaces the network (tests pass an `httpx.MockTransport`).
        """
        if chat_template not in _TEMPLATES:
            raise ValueError(f"unknown chat template {chat_template!r}")
        self.model = model
        self._render = _TEMPLATES[chat_template]
        self._client = propagate_trace_context(
            make_client(base_url, timeout_s=timeout_s, transport=transport)
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
        """One `/generate` call constrained to `schema`; `latency_ms` is the HTTP round trip."""
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
            self._client, "POST", "/generate", what="sglang generate", body=body
        )
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            return self._parse(data, adapter=adapter, latency_ms=latency_ms)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise bad_shape("sglang generate", exc) from exc

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        """One one-token call: compiles the schema's grammar and caches the system prompt."""
        await self.generate_json(messages, schema, max_tokens=1)

    async def ready(self) -> bool:
        """Whether `GET /health` answers 200; never raises."""
        try:
            response = await self._client.get("health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a LoRA adapter under `name` (then pass `adapter=name` to `generate_json`)."""
        data = await request_json(
            self._client,
            "POST",
            "/load_lora_adapter",
            what=f"load adapter {name!r}",
            body={"lora_name": name, "lora_path": str(path)},
        )
        _check_success(data, f"load adapter {name!r}")

    async def unload_adapter(self, name: str) -> None:
        """Unload the LoRA adapter `name`."""
        data = await request_json(
            self._client,
            "POST",
            "/unload_lora_adapter",
            what=f"unload adapter {name!r}",
            body={"lora_name": name},
        )
        _check_success(data, f"unload adapter {name!r}")

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
        sampling: dict[str, Any] = {
            "json_schema": json.dumps(schema, ensure_ascii=False),
            "temperature": temperature,
            "max_new_tokens": max_tokens,
        }
        if seed is not None:
            sampling["sampling_seed"] = seed
        return {
            "text": self._render(messages),
            "sampling_params": sampling,
            "lora_path": adapter,
            "return_logprob": True,
            "return_text_in_logprobs": True,
        }

    def _parse(self, data: Any, *, adapter: str | None, latency_ms: float) -> Generation:
        raw = str(data["text"])
        meta = data["meta_info"]
        entries = meta.get("output_token_logprobs") or []
        finish = meta.get("finish_reason") or {}
        hit_limit = isinstance(finish, Mapping) and finish.get("type") == "length"
        value, json_error = parse_json_output(raw, hit_token_limit=hit_limit)
        texts = align_token_texts(raw, [str(entry[2] or "") for entry in entries])
        return Generation(
            value=value,
            raw=raw,
            tokens_in=int(meta["prompt_tokens"]),
            tokens_out=int(meta["completion_tokens"]),
            token_logprobs=tuple(
                TokenLogprob(text, _as_logprob(entry[0]))
                for text, entry in zip(texts, entries, strict=True)
            ),
            latency_ms=latency_ms,
            engine=self.kind,
            model=self.model,
            adapter=adapter,
            json_error=json_error,
        )


def _as_logprob(value: Any) -> float:
    # SGLang sends null for a logprob it did not compute; NaN keeps the entry and its position.
    return math.nan if value is None else float(value)


def _check_success(data: Any, what: str) -> None:
    if isinstance(data, Mapping) and data.get("success") is False:
        raise EngineError(f"{what}: {data.get('error_message') or 'failed'}", transient=False)
