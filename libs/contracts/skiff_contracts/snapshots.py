"""JSON Schema snapshots of every contract, committed under `schemas/` so drift fails a test.

Regenerate after an intended change with `python -m skiff_contracts.snapshots --write`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from skiff_contracts import domains, events, inventory, messages, registry, saga

SNAPSHOT_DIR = Path(__file__).parent / "schemas"


def contract_models() -> dict[str, type[BaseModel] | TypeAdapter[Any]]:
    """Every contract by the name of its snapshot file."""
    models: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
        "TripRequest": messages.TripRequest,
        "SubmitReply": messages.SUBMIT_REPLY,
        "ExtractTask": messages.ExtractTask,
        "WorkerResult": messages.WORKER_RESULT,
        "TripEvent": events.TRIP_EVENT,
        "SagaRecord": saga.SagaRecord,
    }
    models["registry.Request"] = registry.REGISTRY_REQUEST
    models["registry.Reply"] = registry.REGISTRY_REPLY
    models["registry.CallRecord"] = registry.CallRecord
    models["registry.CallLog"] = registry.CALL_LOG
    models["registry.ModelMetrics"] = registry.ModelMetrics
    for domain in domains.DOMAINS:
        models[f"{domain}.draft"] = domains.DRAFTS[domain]
        models[f"{domain}.request"] = domains.REQUESTS[domain]
    models["inventory.Offer"] = inventory.OFFER
    models["inventory.Request"] = inventory.INVENTORY_REQUEST
    models["inventory.Reply"] = inventory.INVENTORY_REPLY
    return models


def render(model: type[BaseModel] | TypeAdapter[Any]) -> str:
    schema = model.model_json_schema() if isinstance(model, type) else model.json_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def drifted() -> list[str]:
    """Names whose committed snapshot differs from the code (missing snapshots count)."""
    out = []
    for name, model in contract_models().items():
        path = SNAPSHOT_DIR / f"{name}.json"
        if not path.exists() or path.read_text() != render(model):
            out.append(name)
    return out


def write() -> None:
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    for name, model in contract_models().items():
        (SNAPSHOT_DIR / f"{name}.json").write_text(render(model))


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        changed = drifted()
        print("\n".join(changed) or "no drift")
        sys.exit(1 if changed else 0)
