"""A model's output schema against its task's contract: what is refused, what is accepted."""

from __future__ import annotations

import copy
from typing import Any

from skiff_contracts.domains import DRAFTS, FlightsDraft
from skiff_registry.compat import check


def contract() -> dict[str, Any]:
    return FlightsDraft.model_json_schema()


def test_the_contract_is_compatible_with_itself_and_every_draft_too() -> None:
    for draft in DRAFTS.values():
        schema = draft.model_json_schema()
        assert check(schema, copy.deepcopy(schema)) == ()


def test_descriptions_titles_and_constraints_are_not_compared() -> None:
    schema = contract()
    schema["title"] = "Something else"
    origin = schema["properties"]["origin"]
    origin["description"] = "where from"
    origin["anyOf"][0]["maxLength"] = 60
    assert check(contract(), schema) == ()


def test_a_missing_property_is_one_problem_on_that_field() -> None:
    schema = contract()
    del schema["properties"]["destination"]
    problems = check(contract(), schema)
    assert [(p.code, p.field) for p in problems] == [("incompatible_schema.missing", "destination")]


def test_a_retyped_property_is_refused_with_both_types_named() -> None:
    schema = contract()
    schema["properties"]["passengers"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    schema["properties"]["nonstop"] = {"type": "boolean"}  # no longer nullable
    problems = {p.field: p for p in check(contract(), schema)}
    assert set(problems) == {"passengers", "nonstop"}
    assert problems["passengers"].code == "incompatible_schema.type_changed"
    assert "integer | null → null | string" in problems["passengers"].message


def test_an_enum_that_changed_is_a_type_change() -> None:
    schema = contract()
    seating = schema["properties"]["seating_class"]
    seating.clear()
    seating.update({"anyOf": [{"enum": ["economy", "coach"], "type": "string"}, {"type": "null"}]})
    assert [p.field for p in check(contract(), schema)] == ["seating_class"]


def test_a_new_optional_property_is_a_compatible_addition() -> None:
    schema = contract()
    schema["properties"]["cabin_bags"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert check(contract(), schema) == ()


def test_a_new_required_property_is_refused() -> None:
    schema = contract()
    schema["properties"]["cabin_bags"] = {"type": "integer"}
    schema["required"] = ["cabin_bags"]
    problems = check(contract(), schema)
    assert [(p.code, p.field) for p in problems] == [
        ("incompatible_schema.added_required", "cabin_bags")
    ]


def test_a_required_field_that_became_optional_is_refused() -> None:
    ours = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    theirs = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert [p.code for p in check(ours, theirs)] == ["incompatible_schema.not_required"]


def test_refs_are_resolved_before_comparing() -> None:
    ours = {"type": "object", "properties": {"a": {"enum": ["x", "y"]}}}
    theirs = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"enum": ["y", "x"], "type": "string"}},
    }
    assert check(ours, theirs) == ()
