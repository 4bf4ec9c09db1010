"""Planner settings (env prefix `SKIFF_`)."""

from __future__ import annotations

from pathlib import Path

from skiff_runtime.settings import ServiceSettings


class PlannerSettings(ServiceSettings):
    extract_timeout_s: float = 120.0
    booking_timeout_s: float = 30.0
    input_timeout_s: float = 24 * 3600.0
    hold_margin_s: float = 30.0
    sweep_interval_s: float = 2.0
    router_model_path: Path | None = None  # None: the bundled SmolLM2
    router_threads: int = 1
