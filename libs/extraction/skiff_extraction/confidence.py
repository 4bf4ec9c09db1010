"""Confidence from the model's own token log-probabilities, over value tokens only.

Keys, quotes, braces and commas are forced by the schema, so their probabilities say nothing
about the model's certainty; only the tokens that spell each field's value (a null included:
choosing null is a decision too) count. A field's confidence is the geometric mean of its
tokens' probabilities; the reply's is its least confident field, so one doubtful field makes
a doubtful reply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from skiff_inference.engine import TokenLogprob


@dataclass(frozen=True)
class Confidence:
    overall: float
    fields: dict[str, float]


def value_spans(raw: str) -> dict[str, tuple[int, int]]:
    """Character span of each top-level value in a JSON object text, by key.

    The text must be valid JSON (the caller parsed it); a string spans its content without
    the quotes, other values (nested ones as a whole) span their full text.
    """
    spans: dict[str, tuple[int, int]] = {}
    depth = 0
    in_string = escaped = False
    string_start = 0
    key: str | None = None
    value_start: int | None = None
    last_string = ""
    for i, char in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                last_string = raw[string_start + 1 : i]
            continue
        if char == '"':
            in_string = True
            string_start = i
            if depth == 1 and value_start is None and key is None:
                continue
        if depth == 1 and value_start is None and key is not None and not char.isspace():
            value_start = i
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        if depth == 1 and char == ":" and key is None:
            key = last_string
        elif (depth == 1 and char == ",") or (depth == 0 and char == "}"):
            if key is not None and value_start is not None:
                end = len(raw[:i].rstrip())
                quoted = raw[value_start] == '"' and end - value_start > 2
                # A string's quotes are punctuation the schema forces; its content is the value.
                spans[key] = (value_start + 1, end - 1) if quoted else (value_start, end)
            key = value_start = None
    return spans


def value_confidence(raw: str, tokens: Sequence[TokenLogprob]) -> Confidence | None:
    """Per-field and overall confidence, or None when tokens do not line up with `raw`."""
    if not tokens or "".join(t.text for t in tokens) != raw:
        return None
    spans = value_spans(raw)
    per_field: dict[str, list[float]] = {key: [] for key in spans}
    offset = 0
    for token in tokens:
        start, end = offset, offset + len(token.text)
        offset = end
        for key, (v_start, v_end) in spans.items():
            if start < v_end and end > v_start:
                per_field[key].append(token.logprob)
    fields = {key: math.exp(sum(lps) / len(lps)) for key, lps in per_field.items() if lps}
    if not fields:
        return None
    return Confidence(overall=min(fields.values()), fields=fields)
