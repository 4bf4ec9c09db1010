"""The fast constrained decoder: llguidance token masks and forced-token fast-forward.

Each step reads the last position's logits, asks llguidance for the set of tokens the
schema allows next (a bitmask over the whole vocabulary, tens of microseconds, instead of
the GBNF sampler's ~17 ms) and takes the best allowed token, or samples one.

Whenever the grammar allows exactly one continuation (keys, quotes, colons, commas, the
closing brace: about half of an extraction), llguidance's `compute_ff_tokens` spells it in
the tokenizer's canonical tokens and the decoder appends them without sampling. The sampled
token and the forced tokens after it go into ONE `llama_decode`, with logits requested for
each of them: the row before each forced token gives that token's log-probability, the last
row gives the next step's distribution. After the final token (the grammar then allows only
end-of-generation) nothing more is decoded.

The JSON layout is fixed to `json.dumps`'s (", " and ": ", no other whitespace): it is what
the few-shot examples show, so the model writes it anyway under the GBNF decoder, and it
makes the separators forced tokens too. Prompt prefixes are reused through `KvSession`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import llama_cpp
import llguidance
import llguidance.llamacpp
import llguidance.numpy
import numpy as np
import numpy.typing as npt

from skiff_inference.decoding import Decoded
from skiff_inference.engine import EngineError
from skiff_inference.kv_session import KvSession
from skiff_inference.token_choice import choose_token, logprobs_at, mask_from_bitmask

# Keep in step with how prompts show JSON (json.dumps defaults).
JSON_LAYOUT: llguidance._lib.JsonCompileOptions = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}


class GuidedDecoder:
    """llguidance-constrained decoding on llama.cpp's low-level API, one sequence at a time."""

    def __init__(self, llm: llama_cpp.Llama, *, batch_forced: bool = True) -> None:
        """`batch_forced=False` decodes forced tokens one `llama_decode` each.

        That is slower, and it is how llama-cpp-python's own loop (the GBNF decoder) feeds
        tokens: llama.cpp's CPU kernels round a token's KV cache entries differently when
        it is decoded alone than inside a batch, so only then are logits bit-identical to
        the GBNF decoder's. Tests use it to show the two decoders agree exactly.
        """
        self._batch_forced = batch_forced
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._n_vocab = int(llm.n_vocab())
        self._eog = np.array(
            [t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)],
            dtype=np.int64,
        )
        self._session = KvSession(llm)
        self._bitmask = llguidance.numpy.allocate_token_bitmask(1, self._n_vocab)
        self._tokenizer: llguidance.LLTokenizer | None = None

    @property
    def session(self) -> KvSession:
        """The KV cache this decoder evaluates into (its prefix survives between calls)."""
        return self._session

    def compile(self, schema_json: str) -> llguidance.LLMatcher:
        """A matcher in its start state; each decode works on a copy of it."""
        return compile_matcher(self._tokenizer_for_masks(), schema_json)

    def decode(
        self,
        prompt: Sequence[int],
        constraint: object,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> Decoded:
        """Greedy at temperature 0, else seeded sampling; forced tokens are never sampled."""
        if not isinstance(constraint, llguidance.LLMatcher):
            raise TypeError(f"GuidedDecoder needs an LLMatcher, not {type(constraint)}")
        started = time.perf_counter()
        matcher = constraint.deep_copy()
        rng = np.random.default_rng(seed) if temperature > 0 else None
        out: list[int] = []
        logprobs: list[float] = []
        forced_total = 0
        # The prompt suffix goes alone, as in llama-cpp-python, so its KV cache entries are
        # the same numbers under either decoder; `row` is the distribution after it.
        suffix = self._session.keep_common_prefix(prompt)
        row = self._session.evaluate(suffix, rows=1)[0]
        first_token_ms = (time.perf_counter() - started) * 1000.0
        pending: list[int] = []  # the sampled token not yet evaluated, if any
        while True:
            forced = self._fast_forward(matcher, max_tokens - len(out))
            out += forced
            forced_total += len(forced)
            finished = matcher.is_stopped() or len(out) >= max_tokens
            # The last token of a finished output is never evaluated: nothing follows it.
            to_evaluate = pending + forced
            if finished:
                to_evaluate = to_evaluate[:-1]
            rows = self._evaluate(to_evaluate) if to_evaluate else row[None, :]
            # Each forced token's log-probability comes from the position before it:
            # the last sampling row for the first one when nothing was sampled just now.
            before = np.concatenate([row[None, :], rows]) if not pending else rows
            logprobs += logprobs_at(before, forced)
            if finished:
                limit = not matcher.is_stopped()
                return Decoded(out, logprobs, limit, forced_total, len(suffix), first_token_ms)
            row = rows[-1]
            token = self._choose(matcher, row, temperature, rng)
            if token in self._eog:
                return Decoded(out, logprobs, False, forced_total, len(suffix), first_token_ms)
            if not matcher.consume_token(token):
                raise RuntimeError(f"llguidance refused token {token}: {matcher.get_error()}")
            out.append(token)
            logprobs += logprobs_at(row[None, :], [token])
            pending = [token]

    def forget_prefix(self) -> None:
        """Empty the KV cache."""
        self._session.clear()

    def close(self) -> None:
        """Free the batch the KV session allocated."""
        self._session.close()

    def _evaluate(self, tokens: list[int]) -> npt.NDArray[np.float32]:
        """Logits after each of `tokens`: one decode, or one per token when not batching."""
        if self._batch_forced or len(tokens) == 1:
            return self._session.evaluate(tokens, rows=len(tokens))
        return np.concatenate([self._session.evaluate([t], rows=1) for t in tokens])

    def _fast_forward(self, matcher: llguidance.LLMatcher, room: int) -> list[int]:
        if room <= 0 or matcher.is_stopped():
            return []
        forced = matcher.compute_ff_tokens()[:room]
        if forced and not matcher.consume_tokens(forced):
            raise RuntimeError(f"llguidance refused its forced tokens: {matcher.get_error()}")
        return forced

    def _choose(
        self,
        matcher: llguidance.LLMatcher,
        row: npt.NDArray[np.float32],
        temperature: float,
        rng: np.random.Generator | None,
    ) -> int:
        llguidance.numpy.fill_next_token_bitmask(matcher, self._bitmask)
        if matcher.is_error():
            raise RuntimeError(f"llguidance failed to compute a mask: {matcher.get_error()}")
        allowed = mask_from_bitmask(self._bitmask, self._n_vocab)
        # llama.cpp's grammar lets every end-of-generation token end an accepted output;
        # llguidance knows one of them. Allow them all, as the GBNF decoder does.
        if allowed[self._eog].any():
            allowed[self._eog] = True
        return choose_token(row, allowed, temperature=temperature, rng=rng)

    def _tokenizer_for_masks(self) -> llguidance.LLTokenizer:
        # Built on first use (about 0.6 s for a 49k vocabulary), so `warm_up` pays for it.
        if self._tokenizer is None:
            self._tokenizer = mask_tokenizer(self._vocab)
        return self._tokenizer


def mask_tokenizer(vocab: llama_cpp.llama_vocab_p) -> llguidance.LLTokenizer:
    """llguidance's view of a llama.cpp vocabulary (about 0.6 s for 49k tokens)."""
    with warnings.catch_warnings():
        # llguidance calls llama-cpp-python's deprecated `llama_token_get_attr` once per
        # vocabulary entry: 49k identical warnings.
        warnings.simplefilter("ignore", DeprecationWarning)
        return llguidance.llamacpp.lltokenizer_from_vocab(vocab)


def compile_matcher(tokenizer: llguidance.LLTokenizer, schema_json: str) -> llguidance.LLMatcher:
    """A matcher for `schema_json` under the decoder's JSON layout, in its start state.

    Raises a non-transient `EngineError` for a schema llguidance cannot compile.
    """
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema_json, overrides=JSON_LAYOUT)
    except ValueError as exc:
        raise EngineError(f"schema is not a JSON object: {exc}", transient=False) from exc
    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise EngineError(
            f"llguidance cannot compile the schema: {matcher.get_error()}", transient=False
        )
    return matcher
