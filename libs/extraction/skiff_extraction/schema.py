"""The schema a model decodes against, derived from a pydantic draft model.

Two changes from pydantic's own schema, both for the decoder's sake:

* every property is required (nullable), so the model states each field, value or null,
  instead of stopping early at `{}`; and every key becomes a forced token;
* length bounds, titles and defaults are dropped: llama.cpp's GBNF unrolls `maxLength` into
  long repetitions, and pydantic re-checks the bounds after decoding anyway.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from pydantic import BaseModel

DROPPED_KEYWORDS = frozenset({"title", "default", "description", "minLength", "maxLength"})


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in DROPPED_KEYWORDS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@cache
def _decoding_schema_json(model: type[BaseModel]) -> str:
    schema = _strip(copy.deepcopy(model.model_json_schema()))
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return json.dumps(schema, sort_keys=False)


def decoding_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema to constrain decoding of `model` (a fresh copy each call)."""
    result: dict[str, Any] = json.loads(_decoding_schema_json(model))
    return result
