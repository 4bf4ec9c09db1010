"""The model card an extraction model serves under, and the output schema it decodes against.

One function for every producer of cards: a worker registering its own model version at
start-up, and the flywheel registering a fine-tuned adapter version. Both decode against the
domain's draft schema (`DRAFTS[domain]`), so their cards name the same contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skiff_contracts.domains import DRAFTS, Domain
from skiff_contracts.registry import (
    Evaluation,
    ModelCard,
    RolloutMode,
    SchemaRef,
    model_id_for,
    schema_hash,
)
from skiff_extraction.prompts import PROMPT_VERSION, check_prompt_version

# What a worker on the bundled model calls its base model; adapter versions name the same
# base so the workers of that base serve them (skiff_worker.versions).
BUNDLED_BASE_MODEL = "SmolLM2-135M-Instruct (Q4_1 GGUF)"


def extraction_card(
    domain: Domain,
    *,
    name: str,
    version: str,
    base_model: str,
    engine: str,
    owner: str,
    endpoint: str | None = None,
    threshold: float | None = None,
    prompt_version: str = PROMPT_VERSION,
    adapter: str | None = None,
    adapter_sha256: str | None = None,
    evaluations: Sequence[Evaluation] = (),
    rollout: RolloutMode = "manual",
) -> tuple[ModelCard, dict[str, Any]]:
    """The card of one extraction model version, and its output schema."""
    schema = DRAFTS[domain].model_json_schema()
    task = f"{domain}.extract"
    card = ModelCard(
        model_id=model_id_for(task, name, version), task=task, name=name, version=version,
        base_model=base_model, adapter=adapter, adapter_sha256=adapter_sha256, engine=engine,
        endpoint=endpoint,
        output_schema=SchemaRef(schema_id=f"{domain}.draft", version=1, sha256=schema_hash(schema)),
        prompt_version=check_prompt_version(prompt_version), confidence_threshold=threshold,
        evaluations=tuple(evaluations), rollout=rollout, owner=owner,
    )  # fmt: skip
    return card, schema
