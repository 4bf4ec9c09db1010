"""The `Engine` protocol and the values that cross it.

Every engine takes chat messages and a JSON Schema (a pydantic `model_json_schema()`
dict), constrains decoding to that schema, and returns a `Generation`. Output that is
not valid JSON is a *value* (`value=None`, `json_error` set) the caller turns into a
typed escalation; only engine or transport failures raise, as `EngineError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict


class ChatMessage(TypedDict):
    """One chat turn. Put the fixed system prompt first so engines can reuse its prefix."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class TokenLogprob:
    """One output token: its text as it appears in `Generation.raw`, and its log-probability.

    The in-process llama.cpp engine reports the model's own distribution before the
    grammar mask; HTTP engines report what their server computes. That holds for tokens the
    schema forced, too: the fast decoder appends them without sampling, but still reads the
    model's log-probability of each at its position (from the same batched decode), so a
    forced token can carry a low value. It says how much the model agreed with the schema
    there, not how the token was chosen (it was not: it was the only one allowed).
    """

    text: str
    logprob: float


@dataclass(frozen=True)
class Generation:
    """The result of one constrained generation.

    `token_logprobs` has one entry per output token, in order, and the entries' texts
    concatenate to `raw`. `tokens_out` is the engine's own count: the in-process engine
    does not count the end-of-generation token, some servers do (their entry then has
    empty text).
    """

    value: object | None
    raw: str
    tokens_in: int
    tokens_out: int
    token_logprobs: tuple[TokenLogprob, ...]
    latency_ms: float
    engine: str
    model: str
    adapter: str | None = None
    json_error: str | None = None


class EngineError(Exception):
    """The engine or its transport failed; no `Generation` was produced.

    `transient` says whether retrying the same call may succeed (connection reset,
    timeout, 5xx, 429) or not (other 4xx, bad configuration, prompt too long).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient

    def __repr__(self) -> str:
        return f"EngineError({self.message!r}, transient={self.transient})"


class Engine(Protocol):
    """A model behind one narrow call: messages + JSON Schema in, `Generation` out."""

    @property
    def kind(self) -> str:
        """Which engine this is: "llamacpp", "openai" or "sglang"."""
        ...

    @property
    def model(self) -> str:
        """The model id reported in every `Generation`."""
        ...

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
        """Generate JSON constrained to `schema`; raise `EngineError` only on engine failure."""
        ...

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a LoRA adapter under `name` without a restart; then pass `adapter=name`.

        `path` is what the engine loads: a GGUF LoRA file for llama.cpp, a peft directory
        as the SGLang server sees it. Engines that load no adapters raise a non-transient
        `EngineError`.
        """
        ...

    async def unload_adapter(self, name: str) -> None:
        """Unload adapter `name`; later calls naming it fail."""
        ...

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        """Pay first-call costs (grammar build, prompt prefix) now rather than on a real call."""
        ...

    async def aclose(self) -> None:
        """Release the model or the connection pool."""
        ...
