"""The in-process llama.cpp engine (llama-cpp-python): the embedded default and the edge.

One `Llama` per engine. Calls are serialized (an asyncio lock for fairness, a thread
lock because a cancelled caller's worker thread keeps running) and run in a worker
thread so the event loop stays responsive.

Performance choices, each measured (libs/inference/README.md, scripts/measure_llamacpp.py,
bench/decoding.py):

* The schema is compiled once per distinct schema and cached (a GBNF grammar, or an
  llguidance matcher that each call copies).
* Per-token log-probabilities come from the last-token logits, read while decoding.
  llama-cpp-python's own `logprobs` needs `logits_all=True`, which computes and copies
  the full vocabulary's logits for every prompt token and holds an n_ctx x n_vocab float
  array (400 MB for SmolLM2 at n_ctx=2048).
* The prompt is rendered the same way on every call and the KV cache is kept between
  calls, so only the part after the longest common token prefix (the system prompt and
  examples) is evaluated. Interleaving different system prompts on one engine throws it away.
* No repeat penalty (llama-cpp-python's chat default is 1.1): extraction copies spans
  from the prompt, which a repeat penalty punishes.

LoRA adapters (GGUF) are loaded by name while the engine serves (`load_adapter`, no restart)
and applied per call (`generate_json(..., adapter=name)`; none means the base model). The KV
cache holds keys and values computed under one adapter, so its prefix is dropped whenever a
call runs under other weights than the cached prefix was (`lora_adapters.AdapterKey`): a
switch costs one cold prompt evaluation (libs/inference/README.md has the figures). One
engine serving one adapter, the worker's case, keeps its prefix from call to call.

Two decoders sit behind `_decode`, chosen per engine with `decoder=`:

* `"fast"` (the default, `guided_decoder.py`): llguidance token masks on llama.cpp's
  low-level API, with the tokens the schema forces appended without sampling and evaluated
  in one batch with the next step; its `KvSession` keeps the common token prefix.
* `"grammar"` (`gbnf_decoder.py`): llama-cpp-python's sampler chain with a GBNF grammar,
  the fallback. At temperature 0 the fast decoder with `batch_forced_tokens=False`
  reproduces it exactly; batched, outputs part only at near-ties, where llama.cpp's batch
  rounding tips the choice (tests/integration/test_fast_decoder.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import llama_cpp

from skiff_inference.decoding import ConstrainedDecoder, Decoded, DecoderName, schema_json
from skiff_inference.engine import ChatMessage, EngineError, Generation, TokenLogprob
from skiff_inference.gbnf_decoder import GbnfDecoder
from skiff_inference.guided_decoder import GuidedDecoder
from skiff_inference.llama_loading import without_extra_buffer_types
from skiff_inference.lora_adapters import AdapterKey, AdapterSet
from skiff_inference.model_files import ModelFileError, bundled_model_path
from skiff_inference.output import parse_json_output, texts_from_pieces
from skiff_inference.prompt_tokens import chat_renderer, prompt_tokens

Decoder = DecoderName

# Enough to run the grammar sampler and to leave the system prompt in the KV cache.
_WARM_UP_TOKENS = 2


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
        decoder: Decoder = "fast",
        batch_forced_tokens: bool = True,
    ) -> None:
        """Load the model (about 0.3 s for SmolLM2-135M); `None` means the bundled SmolLM2.

        `decoder="fast"` (llguidance masks, forced-token fast-forward) is the default;
        `decoder="grammar"` is llama-cpp-python's GBNF sampler, kept as a fallback.
        `batch_forced_tokens=False` makes the fast decoder feed forced tokens one decode
        each: slower, but its logits are then bit-identical to the GBNF decoder's (see
        `GuidedDecoder`).
        """
        if decoder not in ("fast", "grammar"):
            raise ValueError(f"unknown decoder {decoder!r}; use 'fast' or 'grammar'")
        path = model_path if model_path is not None else bundled_model_path()
        if not path.is_file():
            raise ModelFileError(f"no model file at {path}")
        self.model = model_id or path.stem
        self._seed = seed
        self._llm = _load(path, threads=threads, n_ctx=n_ctx, seed=seed)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._n_vocab = int(self._llm.n_vocab())
        self._render = chat_renderer(self._llm)
        self.decoder: Decoder = decoder
        self._decoder: ConstrainedDecoder = (
            GuidedDecoder(self._llm, batch_forced=batch_forced_tokens)
            if decoder == "fast"
            else GbnfDecoder(self._llm)
        )
        self._constraints: dict[str, object] = {}
        self._adapters = AdapterSet(self._llm)
        # The adapter the KV cache's prefix was computed under (None: the base model).
        self._prefix_owner: AdapterKey | None = None
        self._last_decoded: Decoded | None = None
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._closed = False

    @property
    def grammars_built(self) -> int:
        """How many distinct schemas have been compiled; the cache never evicts."""
        return len(self._constraints)

    @property
    def last_decoded(self) -> Decoded | None:
        """The decoder's report on the last call: forced tokens, prompt tokens evaluated, TTFT."""
        return self._last_decoded

    @property
    def adapters(self) -> tuple[str, ...]:
        """The names of the loaded adapters, sorted."""
        return self._adapters.names

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The token ids this engine evaluates for `messages` (tokenizing touches no state)."""
        return prompt_tokens(self._llm, self._render, messages)

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a GGUF LoRA adapter under `name`, while serving; then pass `adapter=name`.

        Loading an existing name replaces its weights once the new file has loaded (calls
        already running finish first: calls and loads take the same lock). Raises a
        non-transient `EngineError` for a missing file or one llama.cpp refuses.
        """
        async with self._lock:
            await asyncio.to_thread(self._adapter_blocking, self._adapters.load, name, Path(path))

    async def unload_adapter(self, name: str) -> None:
        """Free adapter `name`; an unknown name raises a non-transient `EngineError`."""
        async with self._lock:
            await asyncio.to_thread(self._adapter_blocking, self._adapters.unload, name)

    async def forget_prefix(self) -> None:
        """Empty the KV cache, so the next call evaluates its whole prompt (for measurements)."""
        async with self._lock:
            await asyncio.to_thread(self._forget_blocking)

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
        `adapter` names an adapter loaded with `load_adapter` (an unknown name raises a
        non-transient `EngineError`); None runs the base model.
        """
        if max_tokens < 1 or temperature < 0:
            raise ValueError("max_tokens must be >= 1 and temperature >= 0")
        async with self._lock:
            return await asyncio.to_thread(
                self._generate_blocking,
                list(messages),
                schema,
                adapter,
                max_tokens,
                temperature,
                seed,
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
        adapter: str | None,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> Generation:
        with self._thread_lock:
            if self._closed:
                raise EngineError("the llamacpp engine is closed", transient=False)
            started = time.perf_counter()
            self._apply_adapter(adapter)
            constraint = self._constraint_for(schema)
            prompt = self.prompt_tokens(messages)
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
                adapter=adapter,
                json_error=json_error,
            )

    def _apply_adapter(self, adapter: str | None) -> None:
        owner = self._adapters.apply(adapter)
        if owner != self._prefix_owner:
            # Keys and values in the cache were computed under other weights.
            self._decoder.forget_prefix()
            self._prefix_owner = owner

    def _adapter_blocking(self, operation: Any, *args: Any) -> None:
        with self._thread_lock:
            if self._closed:
                raise EngineError("the llamacpp engine is closed", transient=False)
            operation(*args)

    def _forget_blocking(self) -> None:
        with self._thread_lock:
            if not self._closed:
                self._decoder.forget_prefix()

    def _close_blocking(self) -> None:
        with self._thread_lock:
            if not self._closed:
                self._closed = True
                self._decoder.close()
                self._adapters.close()  # adapters go before the model they belong to
                self._llm.close()

    # --- the decoder seam --------------------------------------------------------------------

    def _constraint_for(self, schema: Mapping[str, Any]) -> object:
        key = schema_json(schema)
        constraint = self._constraints.get(key)
        if constraint is None:
            constraint = self._build_constraint(key)
            self._constraints[key] = constraint
        return constraint

    def _build_constraint(self, schema_json: str) -> object:
        return self._decoder.compile(schema_json)

    def _decode(
        self,
        prompt: list[int],
        constraint: object,
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> Decoded:
        """Sample up to `max_tokens` under `constraint`; stop at end-of-generation."""
        decoded = self._decoder.decode(
            prompt,
            constraint,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=self._seed if seed is None else seed,
        )
        self._last_decoded = decoded
        return decoded
