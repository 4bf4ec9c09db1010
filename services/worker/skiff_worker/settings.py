"""Worker settings (env prefix `SKIFF_`; the engine is nested: `SKIFF_ENGINE__KIND`).

`confidence_threshold` (`SKIFF_CONFIDENCE_THRESHOLD`) wins when set; unset, the worker reads
the threshold `skiff calibrate` stored for its model and domain in `thresholds_file`
(default: the packaged `skiff_extraction/data/thresholds.json`), and runs without one when
none was calibrated. `prices` (`SKIFF_PRICES`, JSON) prices every call (`ModelCall.cost_usd`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from skiff_contracts.domains import Domain
from skiff_extraction.calibration import BUNDLED_MODEL_NAME, BUNDLED_MODEL_VERSION, threshold_for
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
    confidence_threshold: float | None = None
    thresholds_file: Path | None = None
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    def threshold(self) -> float | None:
        """The configured threshold, else the calibrated one for this model and domain."""
        if self.confidence_threshold is not None:
            return self.confidence_threshold
        return threshold_for(self.model_name, self.model_version, self.domain, self.thresholds_file)
