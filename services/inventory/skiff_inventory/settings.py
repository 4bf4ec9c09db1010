"""Inventory settings (env prefix `SKIFF_`). The test knobs are off by default.

Sets take a JSON list or a comma-separated string: `SKIFF_FAIL_OPS=hold,confirm`,
`SKIFF_SOLD_OUT_DOMAINS='["hotels"]'`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from skiff_contracts.domains import Domain
from skiff_contracts.inventory import (
    INVENTORY_OPERATIONS,
    MAX_HOLD_TTL_S,
    InventoryOperation,
)
from skiff_inventory.faults import FailPhase, Faults
from skiff_runtime.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    db_path: Path = Path(".skiff/inventory.sqlite3")
    catalog_seed: int = 7
    hold_ttl_s: Annotated[float, Field(gt=0, le=MAX_HOLD_TTL_S)] = 900.0
    sweep_interval_s: Annotated[float, Field(gt=0)] = 30.0

    # --- test knobs ---------------------------------------------------------------------------
    fail_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    fail_ops: Annotated[frozenset[InventoryOperation], NoDecode] = frozenset(INVENTORY_OPERATIONS)
    # "after": the operation commits and only its reply is lost, like a dropped response.
    fail_phase: FailPhase = "before"
    fail_seed: int = 0
    latency_ms: Annotated[int, Field(ge=0)] = 0
    sold_out_domains: Annotated[frozenset[Domain], NoDecode] = frozenset()

    @field_validator("fail_ops", "sold_out_domains", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def faults(self) -> Faults:
        """The test knobs as the service uses them."""
        return Faults(
            rate=self.fail_rate,
            ops=self.fail_ops,
            phase=self.fail_phase,
            seed=self.fail_seed,
            latency_ms=self.latency_ms,
            sold_out_domains=self.sold_out_domains,
        )
