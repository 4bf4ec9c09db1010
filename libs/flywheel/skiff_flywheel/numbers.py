"""Card and phone numbers in free text, told apart from dates, times, prices and flights.

A *run* is a stretch of digits joined by at most three of ` .()-` (how people write
`4111 1111 1111 1111`, `(555) 123-4567` or `+44 20 7946 0958`). `/` and `:` never join a run,
so `12/03` and `10:30` stay two short runs, and ISO or dotted dates are masked before runs are
found, so two dates in a row never read as one 16-digit number.

Inside a run the longest window of whole digit groups that is a card or a phone wins; the rest
of the run is searched again. That way "2 4111 1111 1111 1111" still finds the card after
the party size, and "on the 12. 555-123-4567" the phone after the date.

* card: 13-19 digits, single spaces or dashes between groups, passing the Luhn check. A
  Luhn-invalid run is *not* a card: it is left as written (a booking or ticket reference, or
  a mistyped card), and no shorter window of a 4-4-4-4 grouping looks like a phone.
* phone: `+` and 8-15 digits; `00` and 11-15 digits; US shapes 3-3-4, 1-3-3-4, `555-0199`,
  or a bare 10 digits (11 starting with 1); a national number starting with 0 of 10-11
  digits in at least two groups (`020 7946 0958`, `06 12 34 56 78`) when it is the whole run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

NumberKind = Literal["card", "phone"]

_RUN = re.compile(r"(?<![\w+])[+(]?\d(?:[ .()\-]{1,3}\d|\d)*")
_DIGITS = re.compile(r"\d+")
# Dates whose separators would otherwise join a run: 2026-03-12, 12.03.2026.
_DATES = re.compile(r"(?<!\d)(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}\.\d{1,2}\.\d{4})(?!\d)")
_CARD_SEPARATORS = frozenset({"", " ", "-"})
_US_SHAPES = frozenset({(3, 3, 4), (1, 3, 3, 4)})


@dataclass(frozen=True)
class NumberSpan:
    """A card or phone number at `text[start:end]`."""

    start: int
    end: int
    kind: NumberKind


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_numbers(text: str) -> list[NumberSpan]:
    """Every card and phone number in `text`, in order, not overlapping."""
    masked = _DATES.sub(lambda m: "/" * len(m.group()), text)
    spans: list[NumberSpan] = []
    for run in _RUN.finditer(masked):
        groups = [
            (m.start() + run.start(), m.end() + run.start()) for m in _DIGITS.finditer(run.group())
        ]
        spans.extend(_search(text, groups, 0, len(groups)))
    return sorted(spans, key=lambda span: span.start)


def _search(text: str, groups: list[tuple[int, int]], lo: int, hi: int) -> Iterator[NumberSpan]:
    """The longest card or phone window in groups[lo:hi], then the same left and right of it."""
    windows = sorted(
        ((i, j) for i in range(lo, hi) for j in range(i + 1, hi + 1)),
        key=lambda w: -sum(end - start for start, end in groups[w[0] : w[1]]),
    )
    for i, j in windows:
        kind = _classify(text, groups[i:j], whole=(i, j) == (0, len(groups)))
        if kind is None:
            continue
        start, end = groups[i][0], groups[j - 1][1]
        # A leading "+" belongs to the number; a "(" only when its ")" is inside it too, so
        # "(415) 555-0132" goes whole and "(… +49 151 23456789)" keeps its brackets.
        if start > 0 and (
            text[start - 1] == "+" or (text[start - 1] == "(" and ")" in text[start:end])
        ):
            start -= 1
        yield from _search(text, groups, lo, i)
        yield NumberSpan(start, end, kind)
        yield from _search(text, groups, j, hi)
        return


def _classify(text: str, groups: list[tuple[int, int]], *, whole: bool) -> NumberKind | None:
    digits = "".join(text[start:end] for start, end in groups)
    sizes = tuple(end - start for start, end in groups)
    separators = {text[a[1] : b[0]] for a, b in pairwise(groups)}
    first = groups[0][0]
    plus = first > 0 and text[first - 1] == "+"
    count = len(digits)
    if not plus and 13 <= count <= 19 and separators <= _CARD_SEPARATORS and luhn_valid(digits):
        return "card"
    if plus:
        return "phone" if 8 <= count <= 15 else None
    if digits.startswith("00") and 11 <= count <= 15 and len(groups) > 1:
        return "phone"
    if sizes in _US_SHAPES or (sizes == (3, 4) and separators == {"-"}):
        return "phone"
    if len(groups) == 1 and (count == 10 or (count == 11 and digits.startswith("1"))):
        return "phone"
    # Shapes this loose only count for a whole run: inside a longer one ("1636 0837 7835
    # 336") they are the tail of some other number.
    if whole and digits.startswith("0") and 10 <= count <= 11 and len(groups) > 1:
        return "phone"
    return None
