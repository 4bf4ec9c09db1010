"""Where the registry keeps things: KV keys for cards, metrics, schemas and its own state."""

from __future__ import annotations

from skiff_contracts.registry import SchemaRef, slug_of

STATE_PREFIX = "_state."  # in REGISTRY_METRICS: the metrics' working state, per task
SERIES_PREFIX = "_series."  # in REGISTRY_METRICS: the page's snapshot points, per task


def metrics_key(task: str, model_id: str) -> str:
    """`<task>.<slug>`: the slug alone is not unique, since every domain's worker may serve
    the same model name and version, and the LLM tier answers for every task."""
    return f"{task}.{slug_of(model_id) or 'unknown'}"


def card_key(model_id: str) -> str:
    """A card's key, the same as its metrics' key: `<task>.<slug>`."""
    return metrics_key(model_id.split("/", 1)[0], model_id)


def schema_key(ref: SchemaRef) -> str:
    return f"{ref.schema_id}.v{ref.version}"
