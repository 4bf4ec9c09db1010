"""PII redaction for everything a call record carries out of a worker.

The conversion loop keeps request texts and model outputs to train on, so they are redacted
*before* a record leaves the process: the CALLS stream, its exports and the datasets curated
from them never hold the raw value. Each value becomes a typed placeholder (`[EMAIL]`,
`[CARD]`, `[PHONE]`, `[PASSPORT]`, `[NAME]`) so a model trained on the text still sees that
something was there and what it was.

Order matters: e-mail addresses go first (their digits are not phones), then cards and
phones (`numbers`), then passport numbers after the word "passport", then cued names
(`names`). Placeholders hold no digits and no capitalised words, so a later step never
matches an earlier step's output. What each detector catches and knowingly misses is
written in its module and shown by `tests/fixtures/pii_corpus.jsonl`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from skiff_flywheel.names import find_names
from skiff_flywheel.numbers import find_numbers

PiiKind = Literal["name", "email", "phone", "card", "passport"]
PLACEHOLDERS: dict[PiiKind, str] = {
    "name": "[NAME]",
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "passport": "[PASSPORT]",
}

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PASSPORT_CUE = re.compile(r"\bpass\s?ports?\b", re.I)
# A passport number has 6-9 letters and digits, at least one digit; "UA1234" is a flight.
_PASSPORT_NUMBER = re.compile(r"(?<![\w-])(?=[A-Za-z]*\d)[A-Za-z0-9]{6,9}(?![\w-])")
_FLIGHT_NUMBER = re.compile(r"(?:[A-Za-z][A-Za-z0-9]|\d[A-Za-z])\d{1,4}")
_PASSPORT_REACH = 40
_PASSPORT_JOINER = re.compile(r"\s*(?:,|and\b|&|/)\s*", re.I)

T = TypeVar("T")


class Redacted(BaseModel):
    """A text with its PII replaced, and how many values of each kind were replaced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    counts: dict[PiiKind, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact(text: str) -> Redacted:
    """`text` with names, e-mails, phones, Luhn-valid cards and passport numbers replaced."""
    counts: Counter[PiiKind] = Counter()

    def email(match: re.Match[str]) -> str:
        counts["email"] += 1
        return PLACEHOLDERS["email"]

    text = _EMAIL.sub(email, text)
    text = _replace(text, [(n.start, n.end, n.kind) for n in find_numbers(text)], counts)
    text = _replace(text, [(s, e, "passport") for s, e in _passports(text)], counts)
    text = _replace(text, [(n.start, n.end, "name") for n in find_names(text)], counts)
    return Redacted(text=text, counts=dict(counts))


def redact_parts(parts: Sequence[str]) -> str:
    """Texts that were joined by single spaces (a request and the user's answers, a request
    and what the trip's other steps know), each redacted on its own, joined again, and the
    joined text redacted once more.

    Each part on its own catches what a detector finds only where a text ends ("… thanks,
    Rachel" followed by the user's answer "From Boston." is no longer a sign-off); the
    joined text catches what spans two parts ("… for me and my wife" answered by "Jane
    Doe.")."""
    return redact(" ".join(redact(part).text for part in parts)).text


def redact_value(value: T) -> T:
    """`value` with every string inside it redacted: dicts, lists and tuples are walked,
    keys are kept, numbers, booleans and None pass through."""
    return cast(T, _walk(value))


def _walk(value: object) -> object:
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, Mapping):
        return {key: _walk(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_walk(item) for item in value)
    return value


def _replace(text: str, spans: list[tuple[int, int, PiiKind]], counts: Counter[PiiKind]) -> str:
    for start, end, kind in sorted(spans, reverse=True):
        text = text[:start] + PLACEHOLDERS[kind] + text[end:]
        counts[kind] += 1
    return text


def _passports(text: str) -> list[tuple[int, int]]:
    """Passport numbers within reach after the word "passport", and the ones listed after."""
    spans: list[tuple[int, int]] = []
    for cue in _PASSPORT_CUE.finditer(text):
        line_end = text.find("\n", cue.end())
        reach = min(cue.end() + _PASSPORT_REACH, line_end if line_end >= 0 else len(text))
        match = _PASSPORT_NUMBER.search(text, cue.end(), reach)
        while match is not None and not _FLIGHT_NUMBER.fullmatch(match.group()):
            spans.append((match.start(), match.end()))
            joiner = _PASSPORT_JOINER.match(text, match.end())
            match = _PASSPORT_NUMBER.match(text, joiner.end()) if joiner else None
    return sorted(set(spans))
