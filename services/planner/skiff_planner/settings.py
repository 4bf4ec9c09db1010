"""Planner settings (env prefix `SKIFF_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from skiff_contracts.domains import Domain
from skiff_planner.transitions import EscalationRule
from skiff_runtime.settings import ServiceSettings


class PlannerSettings(ServiceSettings):
    extract_timeout_s: float = 120.0
    resolve_timeout_s: float = 180.0
    booking_timeout_s: float = 30.0
    input_timeout_s: float = 24 * 3600.0
    hold_margin_s: float = 30.0
    sweep_interval_s: float = 2.0
    # A router file (`RouterModel.save`) for when the registry names no `router.route`
    # champion; None: the router shipped with Skiff.
    router_model_path: Path | None = None
    route_escalation_timeout_s: float = Field(default=30.0, gt=0)
    # Per domain, e.g. SKIFF_ESCALATION='{"flights": {"enabled": false}}'; unlisted domains
    # escalate every reason (no_model included: the LLM tier does a domain with no champion).
    escalation: dict[Domain, EscalationRule] = Field(default_factory=dict)
    max_escalations_per_trip: int = 4
    # USD per million tokens (input, output) for the all-LLM counterfactual in each trip's
    # accounting; default: hosted 70B-class rates (DeepInfra, see the README).
    llm_price_per_mtok: tuple[float, float] = (0.40, 0.40)
