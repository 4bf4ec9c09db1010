"""Worker settings (env prefix `SKIFF_`; the engine is nested: `SKIFF_ENGINE__KIND`)."""

from __future__ import annotations

from skiff_contracts.domains import Domain
from skiff_inference.factory import EngineSettings
from skiff_runtime.settings import ServiceSettings


class WorkerSettings(ServiceSettings):
    domain: Domain
    engine: EngineSettings = EngineSettings()
    model_name: str = "smollm2-135m-instruct"
    model_version: str = "base-q4_1"
    confidence_threshold: float | None = None
