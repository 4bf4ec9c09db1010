"""Engine settings and the one function that turns them into an `Engine`.

Services embed `EngineSettings` as a nested field of their own settings, so the engine
is configured from the environment, e.g. `SKIFF_ENGINE__KIND=sglang`,
`SKIFF_ENGINE__URL=http://gpu-1:30000`, `SKIFF_ENGINE__MODEL=Qwen/Qwen2.5-0.5B-Instruct`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from skiff_inference.engine import Engine, EngineError

EngineKind = Literal["llamacpp", "openai", "sglang"]


class EngineSettings(BaseModel):
    """How to reach the model: in-process llama.cpp (default, bundled SmolLM2) or a server.

    `model_path`, `threads`, `n_ctx` and `decoder` are for llamacpp; `decoder="grammar"`
    (`SKIFF_ENGINE__DECODER=grammar`) falls back from the fast llguidance decoder to
    llama-cpp-python's GBNF sampler. `url`, `api_key`, `response_format` and `timeout_s` are
    for the HTTP engines; `model` is required for the HTTP engines and, for llamacpp,
    overrides the reported model id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EngineKind = "llamacpp"
    model_path: Path | None = None
    url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    threads: int = Field(default=1, ge=1)
    n_ctx: int = Field(default=2048, ge=256)
    decoder: Literal["fast", "grammar"] = "fast"
    response_format: Literal["json_schema", "json_object"] = "json_schema"
    timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _http_engines_need_url_and_model(self) -> EngineSettings:
        missing = _missing_for_http(self)
        if missing:
            raise ValueError(missing)
        return self


def build_engine(settings: EngineSettings) -> Engine:
    """Create the engine `settings` describe; llamacpp loads its model here (blocking, < 1 s)."""
    # Engines are imported on demand: an HTTP-only service should not load llama.cpp.
    if settings.kind == "llamacpp":
        from skiff_inference.llamacpp import LlamaCppEngine

        return LlamaCppEngine(
            settings.model_path,
            threads=settings.threads,
            n_ctx=settings.n_ctx,
            model_id=settings.model,
            decoder=settings.decoder,
        )
    missing = _missing_for_http(settings)
    if missing or settings.url is None or settings.model is None:
        raise EngineError(missing or "url and model are required", transient=False)
    if settings.kind == "openai":
        from skiff_inference.openai_compat import OpenAICompatEngine

        return OpenAICompatEngine(
            settings.url,
            settings.model,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            response_format=settings.response_format,
            timeout_s=settings.timeout_s,
        )
    from skiff_inference.sglang import SGLangEngine

    return SGLangEngine(settings.url, settings.model, timeout_s=settings.timeout_s)


def _missing_for_http(settings: EngineSettings) -> str | None:
    if settings.kind == "llamacpp":
        return None
    absent = [name for name in ("url", "model") if not getattr(settings, name)]
    if not absent:
        return None
    fields = " and ".join(absent)
    env = ", ".join(f"SKIFF_ENGINE__{name.upper()}" for name in absent)
    return f"engine kind {settings.kind!r} needs {fields} (e.g. {env})"
