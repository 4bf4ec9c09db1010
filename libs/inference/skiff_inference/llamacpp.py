"""The in-process llama.cpp engine (llama-cpp-python): the embedded default and the edge.

One `Llama` per engine. Calls are serialized (an asyncio lock for fairness, a thread
lock because a cancelled caller's worker thread keeps running) and run in a worker
thread so the event loop stays responsive.

Performance choices, each measured (libs/inference/README.md, scripts/measure_llamacpp.py):

* The JSON-schema grammar is converted to GBNF once per distinct schema and cached
  (`response_format={"type": "json_object", "schema": ...}` converts it on every call).
  Measured, this saves only ~0.5 ms a call: llama.cpp re-parses the GBNF for every call
  either way (~1.5 ms), and the real cost is the grammar sampler, ~17 ms per token here,
  because llama-cpp-python applies it to the whole vocabulary at every step.
* Per-token log-probabilities come from the last-token logits, read while decoding.
  llama-cpp-python's own `logprobs` needs `logits_all=True`, which computes and copies
  the full vocabulary's logits for every prompt token and holds an n_ctx x n_vocab float
  array (400 MB for SmolLM2 at n_ctx=2048).
* The prompt is rendered the same way on every call and the model state is never reset,
  so llama-cpp-python's longest-common-prefix reuse keeps the system prompt's KV cache
  between calls. Interleaving different system prompts on one engine throws it away.
* No repeat penalty (llama-cpp-python's chat default is 1.1): extraction copies spans
  from the prompt, which a repeat penalty punishes.

The decoding step sits behind `_decode` and `_build_constraint`, the seam where a faster
constrained decoder (llguidance token masks, forced-token fast-forward on the low-level
API) will plug in as another `decoder` value.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from skiff_inference.chat_template import render_chatml
from skiff_inference.engine import ChatMessage, EngineError, Generation, TokenLogprob
from skiff_inference.llama_loading import without_extra_buffer_types
from skiff_inference.model_files import ModelFileError, bundled_model_path
from skiff_inference.output import parse_json_output, texts_from_pieces

Decoder = Literal["grammar"]

# Enough to run the grammar sampler and to leave the system prompt in the KV cache.
_WARM_UP_TOKENS = 2


@dataclass(frozen=True)
class _Decoded:
    token_ids: list[int]
    logprobs: list[float]
    hit_token_limit: bool


def _load(path: Path, *, threads: int, n_ctx: int, seed: int) -> llama_cpp.Llama:
    # n_threads_batch defaults to every core; pinning it to `threads` keeps several
    # single-threaded workers from oversubscribing a small machine. logits_all stays off
    # (see the module docstring); extra buffer types stay off (see llama_loading.py).
    with without_extra_buffer_types():
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            seed=seed,
            logits_all=False,
            verbose=False,
        )


class LlamaCppEngine:
    """SmolLM2 (or any chat GGUF) in this process, with schema-constrained JSON output."""

    kind = "llamacpp"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        threads: int = 1,
        n_ctx: int = 2048,
        seed: int = 0,
        model_id: str | None = None,
        decoder: Decoder = "grammar",
    ) -> None:
        """Load the model (about 0.3 s for SmolLM2-135M); `None` means the bundled SmolLM2."""
        if decoder != "grammar":
            raise ValueError(f"unknown decoder {decoder!r}; only 'grammar' exists so far")
        path = model_path if model_path is not None else bundled_model_path()
        if not path.is_file():
            raise ModelFileError(f"no model file at {path}")
        self.model = model_id or path.stem
        self._seed = seed
        self._llm = _load(path, threads=threads, n_ctx=n_ctx, seed=seed)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._n_vocab = int(self._llm.n_vocab())
        self._render = self._chat_renderer()
        self._constraints: dict[str, LlamaGrammar] = {}
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._closed = False

    @property
    def grammars_built(self) -> int:
        """How many distinct schemas have been compiled; the cache never evicts."""
        return len(self._constraints)

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
        """Generate JSON constrained to `schema`.

        `latency_ms` covers this call's own work, not the wait for an earlier call.
        LoRA adapters are not served in-process yet: an `adapter` raises a non-transient
        `EngineError`.
        """
        if adapter is not None:
            raise EngineError(
                f"the llamacpp engine serves no adapters yet (asked for {adapter!r})",
                transient=False,
            )
        if max_tokens < 1 or temperature < 0:
            raise ValueError("max_tokens must be >= 1 and temperature >= 0")
        async with self._lock:
            return await asyncio.to_thread(
                self._generate_blocking, list(messages), schema, max_tokens, temperature, seed
            )

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        """Build the schema's grammar and put the system prompt into the KV cache."""
        await self.generate_json(messages, schema, max_tokens=_WARM_UP_TOKENS)

    async def aclose(self) -> None:
        """Free the model; later calls raise a non-transient `EngineError`."""
        async with self._lock:
            await asyncio.to_thread(self._close_blocking)

    # --- blocking work, always under the thread lock -------------------------------------

    def _generate_blocking(
        self,
        messages: list[ChatMessage],
        schema: Mapping[str, Any],
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> Generation:
        with self._thread_lock:
            if self._closed:
                raise EngineError("the llamacpp engine is closed", transient=False)
            started = time.perf_counter()
            constraint = self._constraint_for(schema)
            prompt = self._llm.tokenize(
                self._render(messages).encode("utf-8"), add_bos=True, special=True
            )
            if len(prompt) + max_tokens > self._llm.n_ctx():
                raise EngineError(
                    f"prompt ({len(prompt)} tokens) + max_tokens ({max_tokens}) exceeds "
                    f"n_ctx ({self._llm.n_ctx()})",
                    transient=False,
                )
            try:
                decoded = self._decode(
                    prompt, constraint, max_tokens=max_tokens, temperature=temperature, seed=seed
                )
            except RuntimeError as exc:
                raise EngineError(f"llama.cpp failed: {exc}", transient=False) from exc
            texts = texts_from_pieces(self._llm.detokenize([token]) for token in decoded.token_ids)
            raw = "".join(texts)
            value, json_error = parse_json_output(raw, hit_token_limit=decoded.hit_token_limit)
            return Generation(
                value=value,
                raw=raw,
                tokens_in=len(prompt),
                tokens_out=len(decoded.token_ids),
                token_logprobs=tuple(
                    TokenLogprob(text, logprob)
                    for text, logprob in zip(texts, decoded.logprobs, strict=True)
                ),
                latency_ms=(time.perf_counter() - started) * 1000.0,
                engine=self.kind,
                model=self.model,
                json_error=json_error,
            )

    def _close_blocking(self) -> None:
        with self._thread_lock:
            if not self._closed:
                self._closed = True
                self._llm.close()

    # --- the decoder seam --------------------------------------------------------------------

    def _constraint_for(self, schema: Mapping[str, Any]) -> LlamaGrammar:
        # Key order is kept (no sort_keys): it fixes the order the grammar emits properties in.
        key = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
        constraint = self._constraints.get(key)
        if constraint is None:
            constraint = self._build_constraint(key)
            self._constraints[key] = constraint
        return constraint

    def _build_constraint(self, schema_json: str) -> LlamaGrammar:
        try:
            grammar = LlamaGrammar.from_json_schema(schema_json, verbose=False)
        except Exception as exc:  # the converter raises bare Exceptions for unsupported schemas
            raise EngineError(
                f"schema cannot be turned into a grammar: {exc}", transient=False
            ) from exc
        # Parse it once in llama.cpp now: a grammar it rejects would otherwise reach the
        # sampler chain as a NULL sampler on every call.
        sampler = llama_cpp.llama_sampler_init_grammar(
            self._vocab, grammar._grammar.encode("utf-8"), b"root"
        )
        if not sampler:
            raise EngineError(
                "llama.cpp rejected the grammar built from the schema", transient=False
            )
        llama_cpp.llama_sampler_free(sampler)
        return grammar

    def _decode(
        self,
        prompt: list[int],
        constraint: LlamaGrammar,
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> _Decoded:
        """Sample up to `max_tokens` under `constraint`; stop at end-of-generation."""
        self._llm.set_seed(self._seed if seed is None else seed)
        token_ids: list[int] = []
        logprobs: list[float] = []
        tokens = self._llm.generate(
            prompt, temp=temperature, repeat_penalty=1.0, grammar=constraint
        )
        with contextlib.closing(tokens):
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    return _Decoded(token_ids, logprobs, hit_token_limit=False)
                token_ids.append(token)
                logprobs.append(self._logprob_of(token))
                if len(token_ids) >= max_tokens:
                    return _Decoded(token_ids, logprobs, hit_token_limit=True)
        return _Decoded(token_ids, logprobs, hit_token_limit=False)

    def _logprob_of(self, token: int) -> float:
        # Right after sampling, the context still holds the logits the token was drawn
        # from (the next decode has not run yet): log-softmax them at `token`.
        pointer = llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        peak = float(logits.max())
        return float(logits[token]) - peak - math.log(float(np.exp(logits - peak).sum()))

    def _chat_renderer(self) -> Callable[[Sequence[ChatMessage]], str]:
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return render_chatml
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._special_text(self._llm.token_eos()),
            bos_token=self._special_text(self._llm.token_bos()),
        )

        def render(messages: Sequence[ChatMessage]) -> str:
            chat: list[Any] = list(messages)  # llama-cpp-python's message TypedDicts are wider
            return str(formatter(messages=chat).prompt)

        return render

    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return str(self._llm.detokenize([token], special=True).decode("utf-8", errors="replace"))
