"""LLM worker settings (prefix `SKIFF_`): the tier's engine, strategy and price table.

`SKIFF_LLM__KIND/URL/MODEL/API_KEY/RESPONSE_FORMAT` choose the model (defaults: the local
stand-in, see `skiff_extraction.llm_tier`); `SKIFF_RESOLVER__EXAMPLES_K`, `__CANDIDATES`,
`__BUDGET_S`, … the strategy; `SKIFF_PRICES` (JSON) the per-million-token prices by model id.
"""

from __future__ import annotations

from pydantic import Field

from skiff_extraction.llm_tier import STANDIN_VERSION, LlmEngineSettings, ResolverSettings
from skiff_extraction.pricing import DEFAULT_PRICES, ModelPrice
from skiff_runtime.settings import ServiceSettings


class LlmWorkerSettings(ServiceSettings):
    llm: LlmEngineSettings = LlmEngineSettings()
    llm_version: str = Field(
        default=STANDIN_VERSION, description="the tier model's version, recorded on every call"
    )
    resolver: ResolverSettings = ResolverSettings()
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    warm_up_timeout_s: float = Field(
        default=180.0, gt=0, description="how long to wait for the LLM server at start-up"
    )
