"""The GBNF decoder: llama-cpp-python's sampler chain with a grammar converted from the schema.

Kept as the fallback (`decoder="grammar"`): it is llama-cpp-python's reference behaviour,
and the fast decoder's tests compare against it. Its cost is the grammar sampler, about
17 ms per token here, because llama-cpp-python applies the grammar to all 49k candidates at
every step (libs/inference/README.md).

The prompt is never reset, so llama-cpp-python's longest-common-prefix reuse keeps the
system prompt's KV cache between calls.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import LlamaGrammar

from skiff_inference.decoding import Decoded
from skiff_inference.engine import EngineError


class GbnfDecoder:
    """Grammar-constrained sampling through `Llama.generate`."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._n_vocab = int(llm.n_vocab())

    def compile(self, schema_json: str) -> LlamaGrammar:
        """Convert the schema to GBNF and check that llama.cpp accepts it."""
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

    def decode(
        self,
        prompt: Sequence[int],
        constraint: object,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> Decoded:
        """Sample with llama-cpp-python's default chain (top-k 40, top-p 0.95, min-p 0.05)."""
        if not isinstance(constraint, LlamaGrammar):
            raise TypeError(f"GbnfDecoder needs a LlamaGrammar, not {type(constraint)}")
        started = time.perf_counter()
        self._llm.set_seed(seed)
        evaluated = len(prompt) - min(self._cached_prefix(prompt), len(prompt) - 1)
        first_token_ms = 0.0
        token_ids: list[int] = []
        logprobs: list[float] = []
        tokens = self._llm.generate(
            list(prompt), temp=temperature, repeat_penalty=1.0, grammar=constraint
        )
        limit = False
        with contextlib.closing(tokens):
            for token in tokens:
                if not first_token_ms:
                    first_token_ms = (time.perf_counter() - started) * 1000.0
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    break
                token_ids.append(token)
                logprobs.append(self._logprob_of(token))
                if len(token_ids) >= max_tokens:
                    limit = True
                    break
        return Decoded(token_ids, logprobs, limit, 0, evaluated, first_token_ms)

    def forget_prefix(self) -> None:
        """Empty the KV cache: llama-cpp-python re-evaluates from its first token."""
        self._llm.n_tokens = 0  # what `Llama.reset()` does; it is untyped
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._llm.ctx), True)

    def close(self) -> None:
        """Nothing to free: the grammars are Python objects."""

    def _cached_prefix(self, prompt: Sequence[int]) -> int:
        # What llama-cpp-python will find in its cache (for the statistics only).
        cached = self._llm.input_ids[: self._llm.n_tokens].tolist()
        common = 0
        for have, want in zip(cached, prompt, strict=False):
            if have != want:
                break
            common += 1
        return common

    def _logprob_of(self, token: int) -> float:
        # Right after sampling, the context still holds the logits the token was drawn
        # from (the next decode has not run yet): log-softmax them at `token`.
        pointer = llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        peak = float(logits.max())
        return float(logits[token]) - peak - math.log(float(np.exp(logits - peak).sum()))
