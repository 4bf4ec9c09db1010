"""What an adapter is trained to write for one example: the draft, as JSON the decoder emits.

A model is served under the `ft1` prompt, which asks for the *draft*: every value exactly as
the traveller wrote it ("Philly", "next Friday"), null for what the text does not say. The
worker grounds and converts drafts afterwards. A dataset example carries the accepted
answer in request form (`params`: canonical cities, ISO dates) and, where the source has
them, the values as written (`spans`). An example that carries its draft (`Example.draft`:
the call log's accepted draft, a generated request's) teaches exactly that draft. Otherwise
the target draft is built field by field:

* text fields (places, dates, times, names): null when `params` has no value; else the
  span; else the `params` value itself when the text contains it (case-insensitively; the
  text's own spelling is kept); else the example cannot be given a faithful target and is
  skipped (`unwritten_value`): teaching "2019-03-12" for "the 12th" would teach the model
  to convert, which the prompt forbids and the worker's evidence check would undo;
* numbers, booleans and categories (passengers, nonstop, seating_class): the `params` value,
  or null. These are the draft's own types, so the canonical value is what a model writes
  ("two people" -> 2, "Premium Economy" -> "premium_economy").

The draft must validate against `DRAFTS[domain]` (`invalid_draft` otherwise), and the text
must support each of its values as the worker's evidence check reads them
(`unsupported_value` otherwise). Its JSON is
laid out as the fast decoder lays it out: the schema's property order, `", "` and `": "`,
no other white space, non-ASCII characters as themselves (`json.dumps(...,
ensure_ascii=False)`); `training_data` then checks it against the decoder's grammar.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from pydantic import ValidationError

from skiff_contracts.domains import DRAFTS, Domain
from skiff_extraction.evidence import unsupported_fields
from skiff_extraction.schema import decoding_schema
from skiff_flywheel.dataset import Example

FieldKind = Literal["text", "number", "boolean", "category"]
SkipReason = Literal[
    "unwritten_value", "unsupported_value", "invalid_draft", "not_decodable", "too_long"
]


class TargetError(ValueError):
    """No faithful target for an example; `reason` is what the skip is counted under."""

    def __init__(self, reason: SkipReason, message: str) -> None:
        super().__init__(message)
        self.reason: SkipReason = reason


@cache
def field_kinds(domain: Domain) -> dict[str, FieldKind]:
    """Each draft field's kind, from the decoding schema (in the schema's property order)."""
    kinds: dict[str, FieldKind] = {}
    for name, prop in decoding_schema(DRAFTS[domain])["properties"].items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"{domain}.{name}: expected one non-null type, got {options}")
        option = options[0]
        if "enum" in option:
            kinds[name] = "category"
        elif option.get("type") == "string":
            kinds[name] = "text"
        elif option.get("type") in ("integer", "number"):
            kinds[name] = "number"
        elif option.get("type") == "boolean":
            kinds[name] = "boolean"
        else:
            raise ValueError(f"{domain}.{name}: unsupported type {option}")
    return kinds


def target_draft(example: Example, domain: Domain) -> dict[str, Any]:
    """The draft `example` teaches, in the schema's field order; raises `TargetError`."""
    draft: dict[str, Any] = {}
    if example.draft is not None:
        draft = {name: example.draft.get(name) for name in field_kinds(domain)}
        return _validated(example, domain, draft)
    for name, kind in field_kinds(domain).items():
        value = example.params.get(name)
        if kind != "text" or value is None:
            draft[name] = value
            continue
        span = example.spans.get(name)
        written = span or (as_written(value, example.text) if isinstance(value, str) else None)
        if written is None:
            raise TargetError(
                "unwritten_value",
                f"{example.example_id}: {name}={value!r} has no span and is not in the text",
            )
        draft[name] = written
    return _validated(example, domain, draft)


def _validated(example: Example, domain: Domain, draft: dict[str, Any]) -> dict[str, Any]:
    try:
        checked = DRAFTS[domain].model_validate(draft)
    except ValidationError as error:
        raise TargetError(
            "invalid_draft", f"{example.example_id}: the draft fails {DRAFTS[domain].__name__}"
        ) from error
    if unsupported := unsupported_fields(checked, example.text):
        # A label the text does not bear out (SGD's state after a turn the text left out)
        # would teach the model to invent what the worker's evidence check then drops.
        raise TargetError(
            "unsupported_value", f"{example.example_id}: the text does not say {unsupported}"
        )
    dumped: dict[str, Any] = checked.model_dump(mode="json")
    return dumped


def target_json(draft: dict[str, Any]) -> str:
    """The draft as the fast decoder writes it (see the module docstring)."""
    return json.dumps(draft, ensure_ascii=False)


def as_written(value: str, text: str) -> str | None:
    """`value` as it appears in `text` (case-insensitive match, the text's spelling), or None."""
    start = text.casefold().find(value.casefold())
    if start < 0 or not value:
        return None
    # casefold can change lengths ("ß" -> "ss"); only trust a match that maps back exactly.
    found = text[start : start + len(value)]
    return found if found.casefold() == value.casefold() else None
