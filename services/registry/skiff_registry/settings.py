"""Registry settings (env prefix `SKIFF_`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from skiff_registry.gates import Gates
from skiff_runtime.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    # The rolling window of the live metrics, cut into buckets of `metrics_bucket_s`; one
    # snapshot point per task and bucket feeds the governance page's plots.
    metrics_window_s: Annotated[float, Field(gt=0)] = 3600.0
    metrics_bucket_s: Annotated[float, Field(gt=0)] = 60.0
    series_points: Annotated[int, Field(ge=1, le=10_000)] = 1440  # a day of minutes
    snapshot_every_s: Annotated[float, Field(gt=0)] = 15.0
    calls_batch: Annotated[int, Field(ge=1, le=1024)] = 256
    # A shadow answer waits this long for the live answer of the same step (and back).
    shadow_match_ttl_s: Annotated[float, Field(gt=0)] = 900.0
    shadow_pending_max: Annotated[int, Field(ge=1)] = 2000
    # An answer waits this long for the accepted answer of its step (and back), for the
    # answer agreement; at most `answer_pending_max` steps per task wait at once.
    answer_match_ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    answer_pending_max: Annotated[int, Field(ge=1)] = 2000
    # Record ids remembered per task to drop a call record delivered twice.
    dedupe_ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    dedupe_max: Annotated[int, Field(ge=1)] = 5000
    # Automatic rollout of versions registered with rollout="auto" (`SKIFF_ROLLOUT__*`).
    rollout: Gates = Gates()

    @model_validator(mode="after")
    def _whole_buckets(self) -> RegistrySettings:
        buckets = self.metrics_window_s / self.metrics_bucket_s
        if buckets < 1 or buckets > 1440 or abs(buckets - round(buckets)) > 1e-9:
            raise ValueError("metrics_window_s must be 1 to 1440 whole metrics_bucket_s")
        return self
