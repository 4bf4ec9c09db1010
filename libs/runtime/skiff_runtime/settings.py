"""The settings base every service extends: one `BaseSettings`, prefix `SKIFF_`.

Shared names (`SKIFF_NATS_URL`, `SKIFF_LOG_FORMAT`) mean the same in every service;
nested settings use `__` (`SKIFF_ENGINE__THREADS=2`). Trace export is not configured here
but by the standard `OTEL_*` variables (see `skiff_runtime.telemetry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings common to every process."""

    model_config = SettingsConfigDict(
        env_prefix="SKIFF_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    nats_url: str = "nats://127.0.0.1:4222"  # or a comma-separated list (a cluster's seeds)
    nats_creds: Path | None = None
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    # /metrics, /healthz and /readyz (skiff_runtime.health); 0 turns the endpoint off.
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    # Prompt and completion text on model spans: off by default (it is user data).
    trace_content: bool = False
