"""Worker settings (env prefix `SKIFF_`; the engine is nested: `SKIFF_ENGINE__KIND`).

There is no threshold setting: a version's confidence threshold is its registry card's
(`skiff calibrate` sets it there), read at registration and at every heartbeat. `prices`
(`SKIFF_PRICES`, JSON) prices every call (`ModelCall.cost_usd`).
"""

from __future__ import annotations

from pydantic import Field

from skiff_contracts.domains import Domain
from skiff_extraction.calibration import BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION
from skiff_extraction.cards import BUNDLED_BASE_MODEL
from skiff_extraction.pricing import DEFAULT_PRICES, ModelPrice
from skiff_inference.factory import EngineSettings
from skiff_runtime.settings import ServiceSettings


class WorkerSettings(ServiceSettings):
    domain: Domain
    engine: EngineSettings = EngineSettings()
    model_name: str = BUNDLED_MODEL_NAME
    model_version: str = BUNDLED_MODEL_VERSION
    base_model: str = BUNDLED_BASE_MODEL
    model_owner: str = "skiff"
    heartbeat_s: float = 15.0
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
