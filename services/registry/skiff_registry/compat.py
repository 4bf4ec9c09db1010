"""Is a model's output schema compatible with its task's contract? (pure)

Compatible means every answer valid under the model's schema reads the same under the
contract's field names and types: each property of the contract is still there with the
same type (JSON types, nullability, enum values, array items, nested objects), nothing the
contract requires became optional, and any new property is optional. Descriptions, titles,
defaults and length or range constraints are not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skiff_contracts.problems import Problem

Shape = tuple[Any, ...]
_CODE = "incompatible_schema"


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local `$ref`s (`#/$defs/…`, `#/definitions/…`)."""
    seen: set[str] = set()
    while isinstance(node.get("$ref"), str):
        ref = str(node["$ref"])
        if ref in seen or not ref.startswith("#/"):
            break
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = target if isinstance(target, Mapping) else {}
    return node


def shape(node: Mapping[str, Any], root: Mapping[str, Any]) -> Shape:
    """A comparable signature of a schema's type, free of descriptive keywords."""
    node = _resolve(node, root)
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            members: set[Shape] = set()
            for option in node[key]:
                member = shape(option, root)
                members.update(member[1] if member[0] == "union" else (member,))
            return ("union", frozenset(members)) if len(members) != 1 else members.pop()
    if "const" in node:
        return ("enum", frozenset({repr(node["const"])}))
    if isinstance(node.get("enum"), list):
        return ("enum", frozenset(repr(value) for value in node["enum"]))
    kind = node.get("type")
    if isinstance(kind, list):
        return shape({"anyOf": [{**node, "type": one} for one in kind]}, root)
    if kind == "array":
        items = node.get("items")
        return ("array", shape(items, root) if isinstance(items, Mapping) else ("any",))
    if kind == "object" or "properties" in node:
        properties = node.get("properties") or {}
        fields = tuple(sorted((name, shape(sub, root)) for name, sub in properties.items()))
        return ("object", fields, frozenset(node.get("required") or ()))
    return (str(kind),) if kind else ("any",)


def _describe(value: Shape) -> str:
    if value[0] == "union":
        return " | ".join(sorted(_describe(member) for member in value[1]))
    if value[0] == "enum":
        return "one of " + ", ".join(sorted(value[1]))
    if value[0] == "array":
        return f"array of {_describe(value[1])}"
    return str(value[0])


def check(contract: Mapping[str, Any], candidate: Mapping[str, Any]) -> tuple[Problem, ...]:
    """One `Problem` per incompatible field; empty when `candidate` may serve `contract`."""
    contract = _resolve(contract, contract)
    candidate_root = candidate
    candidate = _resolve(candidate, candidate)
    theirs: Mapping[str, Any] = candidate.get("properties") or {}
    ours: Mapping[str, Any] = contract.get("properties") or {}
    required_ours = set(contract.get("required") or ())
    required_theirs = set(candidate.get("required") or ())
    problems: list[Problem] = []
    for name, schema in ours.items():
        if name not in theirs:
            problems.append(
                Problem(code=f"{_CODE}.missing", message=f"'{name}' is missing", field=name)
            )
            continue
        want, got = shape(schema, contract), shape(theirs[name], candidate_root)
        if want != got:
            message = f"'{name}' changed type: {_describe(want)} → {_describe(got)}"
            problems.append(Problem(code=f"{_CODE}.type_changed", message=message, field=name))
        elif name in required_ours and name not in required_theirs:
            message = f"'{name}' is required by the contract and optional here"
            problems.append(Problem(code=f"{_CODE}.not_required", message=message, field=name))
    for name in sorted(set(theirs) - set(ours)):
        if name in required_theirs:
            message = f"'{name}' is new and required; a new property must be optional"
            problems.append(Problem(code=f"{_CODE}.added_required", message=message, field=name))
    return tuple(problems)
