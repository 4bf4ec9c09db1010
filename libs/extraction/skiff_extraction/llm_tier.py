"""How the LLM tier is configured, and the stand-in that serves it where no LLM exists.

The tier talks to an OpenAI-compatible server through `OpenAICompatEngine`, configured as
`SKIFF_LLM__KIND`, `SKIFF_LLM__URL`, `SKIFF_LLM__MODEL`, `SKIFF_LLM__API_KEY` (an
`EngineSettings` whose defaults describe the stand-in). Pointing the tier at a real LLM
(SGLang or vLLM serving a large model, or a hosted API) is a settings change, e.g.
`SKIFF_LLM__URL=https://api.example.com/v1 SKIFF_LLM__MODEL=meta-llama/Llama-3.3-70B-Instruct
SKIFF_LLM__RESPONSE_FORMAT=json_schema SKIFF_LLM__API_KEY=…`.

**The stand-in.** No large model exists in this project's environment, so by default the
tier is the *bundled SmolLM2-135M* served by llama-cpp-python's OpenAI-compatible server
(`python -m skiff_inference.llamacpp_server`) under the model id `llm-standin`. It is the
same small model as the SLM tier, so it is not smarter; it is given a stronger strategy
(retrieved solved examples in the prompt, several candidates) and it goes over HTTP exactly
as a real LLM would. Its figures measure the escalation machinery, not what an LLM would
achieve.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skiff_extraction.pipeline import MAX_OUTPUT_TOKENS
from skiff_extraction.pricing import LLM_STANDIN_MODEL
from skiff_inference.engine import Engine
from skiff_inference.factory import EngineKind, EngineSettings, build_engine
from skiff_inference.openai_compat import OpenAICompatEngine

STANDIN_MODULE = "skiff_inference.llamacpp_server"
STANDIN_PORT = 8089
STANDIN_URL = f"http://127.0.0.1:{STANDIN_PORT}"
STANDIN_N_CTX = 4096  # the fixed prefix, k retrieved examples and the request fit with room
STANDIN_VERSION = "standin-smollm2-135m-q4_1"


class LlmEngineSettings(EngineSettings):
    """The LLM tier's engine: an OpenAI-compatible server, by default the local stand-in."""

    kind: EngineKind = "openai"
    url: str | None = STANDIN_URL
    model: str | None = LLM_STANDIN_MODEL
    response_format: Literal["json_schema", "json_object"] = "json_object"
    timeout_s: float = Field(default=60.0, gt=0)
    logprobs: bool = Field(
        default=False,
        description="ask for token log-probabilities (confidence); off for the stand-in",
    )


class _WithoutLogprobs(OpenAICompatEngine):
    """`OpenAICompatEngine` that does not ask for log-probabilities.

    llama-cpp-python's server answers `logprobs` by sorting the whole vocabulary in Python
    for every output token, and only with logits kept for every prompt position
    (`--logits_all`). On this project's 2-core machines that made one stand-in call 3–5 times
    slower (52 s instead of about 10 s, measured). Without log-probabilities the tier's
    `confidence` is None, which it does not use unless a threshold is configured.
    """

    def request_body(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        body = super().request_body(*args, **kwargs)
        body.pop("logprobs", None)
        body.pop("top_logprobs", None)
        return body


def build_llm_engine(settings: LlmEngineSettings) -> Engine:
    """The tier's engine; `logprobs=False` only changes the OpenAI-compatible request."""
    if settings.kind != "openai" or settings.logprobs:
        return build_engine(settings)
    assert settings.url is not None and settings.model is not None  # the validator checked
    return _WithoutLogprobs(
        settings.url,
        settings.model,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        response_format=settings.response_format,
        timeout_s=settings.timeout_s,
    )


class ResolverSettings(BaseModel):
    """The tier's strategy (`SKIFF_RESOLVER__…`): examples, candidates, retries, budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    examples_k: int = Field(default=3, ge=0, description="retrieved solved examples per prompt")
    candidates: int = Field(default=3, ge=1, description="temperature 0 first, then sampled")
    sample_temperature: float = Field(default=0.7, ge=0)
    seed: int = 1
    budget_s: float = Field(default=60.0, gt=0, description="one budget for the whole step")
    engine_attempts: int = Field(default=3, ge=1, description="tries per call on transient errors")
    retry_initial_s: float = Field(default=0.5, ge=0, description="first retry's wait (doubles)")
    show_failed_attempt: bool = Field(
        default=False, description="tell the model what the SLM read and why it failed"
    )
    confidence_threshold: float | None = None
    max_tokens: int = MAX_OUTPUT_TOKENS


def standin_args(
    model_path: Path, port: int, *, threads: int = 1, host: str = "127.0.0.1"
) -> list[str]:
    """The arguments of `python -m skiff_inference.llamacpp_server` for the stand-in."""
    return [
        "--model", str(model_path),
        "--model_alias", LLM_STANDIN_MODEL,
        "--host", host,
        "--port", str(port),
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        "--n_ctx", str(STANDIN_N_CTX),
        # Logits for every prompt position are only needed for log-probabilities, which the
        # tier does not ask this server for (see `_WithoutLogprobs`).
        "--logits_all", "false",
        "--verbose", "false",
    ]  # fmt: skip


def standin_command(
    model_path: Path, port: int, *, threads: int = 1, host: str = "127.0.0.1"
) -> list[str]:
    """The full command line of the stand-in server."""
    args = standin_args(model_path, port, threads=threads, host=host)
    return [sys.executable, "-m", STANDIN_MODULE, *args]
