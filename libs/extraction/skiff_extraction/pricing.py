"""What a model call costs: tokens priced per million by a table keyed by model id.

The defaults are hosted list prices (DeepInfra, 2024–26, per 1M tokens, as collected in
`shared/notes/performance-figures.md` §4), chosen so the comparison is conservative:

* the micro-SLM is priced as a hosted **8B** model ($0.02 in / $0.03 out), although the
  bundled 135M model running on our own CPU costs far less;
* the LLM tier is priced as a hosted **70B** model ($0.40 in / $0.40 out); the stand-in
  tier (`llm-standin`, the bundled SmolLM2 behind an OpenAI-compatible server) is priced as
  the 70B model it stands in for.

A model missing from the table costs 0.0: an unpriced model is one you own and run. An
adapter version the table does not name is priced as the worker's base model it runs on.
Services carry the table in their settings (`SKIFF_PRICES`), so a real deployment adds its
own ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

MILLION = 1_000_000


class ModelPrice(BaseModel):
    """US dollars per million input and output tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)


HOSTED_8B = ModelPrice(input_usd_per_mtok=0.02, output_usd_per_mtok=0.03)
HOSTED_70B = ModelPrice(input_usd_per_mtok=0.40, output_usd_per_mtok=0.40)

LLM_STANDIN_MODEL = "llm-standin"
"""The model id the stand-in LLM tier serves the bundled SmolLM2 under."""

LLM_REFERENCE_MODEL = LLM_STANDIN_MODEL
"""The model the all-LLM counterfactual is priced at (every step sent to the LLM tier)."""

DEFAULT_PRICES: dict[str, ModelPrice] = {
    # The micro-SLM, under the ids the worker (settings) and the in-process engine report.
    "smollm2-135m-instruct": HOSTED_8B,
    "SmolLM2-135M-Instruct.Q4_1": HOSTED_8B,
    "meta-llama/Llama-3.1-8B-Instruct": HOSTED_8B,
    # The LLM tier.
    LLM_STANDIN_MODEL: HOSTED_70B,
    "meta-llama/Llama-3.3-70B-Instruct": HOSTED_70B,
}


def price(
    model: str,
    tokens_in: int,
    tokens_out: int,
    table: Mapping[str, ModelPrice] = DEFAULT_PRICES,
) -> float:
    """The cost in US dollars of `tokens_in` + `tokens_out` tokens on `model` (0.0 if unpriced)."""
    rate = table.get(model)
    if rate is None:
        return 0.0
    return (tokens_in * rate.input_usd_per_mtok + tokens_out * rate.output_usd_per_mtok) / MILLION


def all_llm_cost(
    tokens_in: int,
    tokens_out: int,
    table: Mapping[str, ModelPrice] = DEFAULT_PRICES,
    reference: str = LLM_REFERENCE_MODEL,
) -> float:
    """The counterfactual: what the same tokens would cost had the LLM tier done every step."""
    return price(reference, tokens_in, tokens_out, table)
