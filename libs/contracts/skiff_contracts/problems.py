"""Typed failure values: what went wrong, where, and whether the LLM tier may help."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

from skiff_contracts.base import Frozen

EscalationReason = Literal[
    "schema_invalid",  # the model's reply is not valid JSON or fails the draft schema
    "business_rule",  # valid but impossible: past or impossible dates, dates out of order,
    # a party size out of range (whether the draft or the text states it)
    "low_confidence",  # the model's own log-probabilities say it is guessing
    "ambiguous",  # several catalog matches (two Springfields) or several readings
    "ungrounded",  # a place the catalog does not know
    "no_model",  # no micro-SLM covers this work (a train ticket)
    "timeout",  # the step missed its deadline
    "engine_error",  # the engine failed to answer
]
ESCALATION_REASONS: tuple[EscalationReason, ...] = (
    "schema_invalid",
    "business_rule",
    "low_confidence",
    "ambiguous",
    "ungrounded",
    "no_model",
    "timeout",
    "engine_error",
)


class Problem(Frozen):
    """One thing wrong with a message or a model's answer."""

    code: str
    message: str
    field: str | None = None


def validation_problems(
    error: ValidationError, code_prefix: str = "invalid"
) -> tuple[Problem, ...]:
    """One `Problem` per pydantic error: code `<prefix>.<error type>`, field as a dotted path."""
    return tuple(
        Problem(
            code=f"{code_prefix}.{item['type']}",
            message=item["msg"],
            field=".".join(str(part) for part in item["loc"]) or None,
        )
        for item in error.errors()
    )
