"""What a constrained decoder is to the llama.cpp engine: a schema compiler and a decode loop.

Two decoders implement it: `GbnfDecoder` (llama-cpp-python's own sampler chain with a GBNF
grammar, the fallback) and `GuidedDecoder` (llguidance token masks with forced-token
fast-forward on the low-level API, the default). The engine serializes calls, so a decoder
never runs two decodes at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

DecoderName = Literal["fast", "grammar"]


def schema_json(schema: Mapping[str, Any]) -> str:
    """The schema as the decoders compile it, and the key of its compiled form.

    Key order is kept (no sort_keys): it fixes the order the grammar emits properties in.
    """
    return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Decoded:
    """Output token ids (end-of-generation excluded), one log-probability each.

    `forced` counts the tokens the grammar fixed and the decoder appended without
    sampling (always 0 for the GBNF decoder, which samples every token).
    `prompt_evaluated` is how many prompt tokens were decoded (the rest came from the KV
    cache) and `first_token_ms` the time until the first output token's distribution was
    ready: the time to first token without tokenization.
    """

    token_ids: list[int]
    logprobs: list[float]
    hit_token_limit: bool
    forced: int = 0
    prompt_evaluated: int = 0
    first_token_ms: float = 0.0


class ConstrainedDecoder(Protocol):
    """Compiles a JSON Schema once, then decodes prompts under it."""

    def compile(self, schema_json: str) -> object:
        """The decoder's compiled form of `schema_json`; raises `EngineError` if unsupported."""
        ...

    def decode(
        self,
        prompt: Sequence[int],
        constraint: object,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> Decoded:
        """Sample up to `max_tokens` under `constraint`; stop at end-of-generation."""
        ...

    def forget_prefix(self) -> None:
        """Empty the KV cache: the next call evaluates its whole prompt (cold)."""
        ...

    def close(self) -> None:
        """Release what the decoder allocated (not the model)."""
        ...
