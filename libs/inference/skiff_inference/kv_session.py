"""One llama.cpp context driven through the low-level API: batches in, last rows of logits out.

`KvSession` remembers which tokens sit in the KV cache (sequence 0, positions 0..n-1), so a
new prompt that shares a prefix with what was evaluated before (the fixed system prompt and
few-shot examples, or even the last call's output) only evaluates its new suffix: the stale
tail is dropped with `llama_memory_seq_rm` and the suffix is decoded after the kept prefix.

Several tokens go into one `llama_decode` call (the prompt suffix, or a sampled token plus the
tokens the grammar forces after it), and logits are requested only for the last rows the
caller needs: one `llama_decode` per sampling step, however many tokens it appends.
"""

from __future__ import annotations

from collections.abc import Sequence

import llama_cpp
import numpy as np
import numpy.typing as npt

Logits = npt.NDArray[np.float32]

_SEQ = 0  # one sequence per context: calls on an engine are serialized
# A token decoded alone gets slightly different numbers from llama.cpp's CPU kernels than
# inside a batch (measured: logits off by up to 0.5). Re-evaluating a few tokens when the
# whole prompt is cached keeps a repeated request's output identical to its cold one.
_MIN_SUFFIX = 4


class KvSession:
    """The KV cache of one llama.cpp context, with the token ids it holds."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._ctx = llm.ctx
        self._n_vocab = int(llm.n_vocab())
        self._n_batch = int(llama_cpp.llama_n_batch(self._ctx))
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        # The session may start on a context another path already used: begin empty.
        llama_cpp.llama_memory_clear(self._memory, True)
        self._cached: list[int] = []
        self._closed = False

    @property
    def cached_tokens(self) -> int:
        """How many tokens the KV cache holds."""
        return len(self._cached)

    def keep_common_prefix(self, prompt: Sequence[int]) -> list[int]:
        """Drop what `prompt` does not share with the cache; return the tokens still to evaluate.

        At least the last few prompt tokens are always returned: the next step needs the
        logits at the last position, and llama.cpp keeps only the last decode's logits.
        """
        common = 0
        for cached, wanted in zip(self._cached, prompt, strict=False):
            if cached != wanted:
                break
            common += 1
        common = max(0, min(common, len(prompt) - _MIN_SUFFIX))
        if common < len(self._cached):
            if not llama_cpp.llama_memory_seq_rm(self._memory, _SEQ, common, -1):
                # A memory that cannot drop a partial sequence: start over.
                self.clear()
                common = 0
            else:
                del self._cached[common:]
        return list(prompt[common:])

    def evaluate(self, tokens: Sequence[int], *, rows: int) -> Logits:
        """Append `tokens` to the cache; return the logits of the last `rows` of them.

        Row i of the result is the model's next-token distribution (unnormalised) after
        `tokens[len(tokens) - rows + i]`. Tokens beyond one batch (512) go in several
        decodes.
        """
        if not tokens or not 1 <= rows <= len(tokens):
            raise ValueError(f"cannot return {rows} rows for {len(tokens)} tokens")
        first_with_logits = len(tokens) - rows
        # Chunks start where llama-cpp-python's own `eval` starts them, so a prompt's KV
        # cache holds the same numbers under either decoder (batch shape changes rounding).
        parts: list[Logits] = []
        for start in range(0, len(tokens), self._n_batch):
            chunk = tokens[start : start + self._n_batch]
            wanted = len(chunk) - max(first_with_logits - start, 0)
            self._decode(chunk, len(chunk) - max(wanted, 0))
            if wanted > 0:
                pointer = llama_cpp.llama_get_logits(self._ctx)
                # A view into llama.cpp's output buffer, valid until the next decode.
                parts.append(np.ctypeslib.as_array(pointer, shape=(wanted, self._n_vocab)).copy())
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def clear(self) -> None:
        """Forget everything: the next prompt is evaluated from its first token."""
        llama_cpp.llama_memory_clear(self._memory, True)
        self._cached.clear()

    def close(self) -> None:
        """Free the batch; the context belongs to the `Llama` that made it."""
        if not self._closed:
            self._closed = True
            llama_cpp.llama_batch_free(self._batch)

    def _decode(self, chunk: Sequence[int], first_with_logits: int) -> None:
        batch = self._batch
        base = len(self._cached)
        for i, token in enumerate(chunk):
            batch.token[i] = token
            batch.pos[i] = base + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = _SEQ
            batch.logits[i] = i >= first_with_logits
        batch.n_tokens = len(chunk)
        status = int(llama_cpp.llama_decode(self._ctx, batch))
        if status != 0:
            # The cache may hold part of the chunk now: drop it all rather than guess.
            self.clear()
            raise RuntimeError(f"llama_decode returned {status}")
        self._cached.extend(chunk)
