"""Read an amount of money as people write it: "$6,400", "1.200 €", "EUR 950", "2,500 dollars".

Separators follow the writer, not one locale:

* with both "," and ".", the one written last is the decimal mark ("6,400.50", "1.200,50");
* with one kind only, a separator followed by exactly three digits groups thousands
  ("6,400", "1.200", "12 000"), any other is the decimal mark ("99.5", "12,75");
* "k" after a figure is thousands ("3k", "2.5k USD"); ".-" after one means no cents
  ("CHF 4'500.-").

The currency is an ISO 4217 code from a symbol, a code or a word written before or after
the figure; none means the caller's default. Anything else (two figures, a negative amount,
a word that is no currency) is a `MoneyParseError`: a trip cost nobody can read must be
asked about, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skiff_travel.text import MAX_INPUT, fold


class MoneyParseError(ValueError):
    """The text is not one amount of money this module can read."""


@dataclass(frozen=True)
class Money:
    amount: float
    currency: str | None  # ISO 4217; None when the text names none


_SYMBOLS = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "c$": "CAD",
            "a$": "AUD", "ca$": "CAD", "au$": "AUD", "chf": "CHF", "fr": "CHF"}  # fmt: skip
_WORDS = {
    "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD", "us dollars": "USD",
    "eur": "EUR", "euro": "EUR", "euros": "EUR", "gbp": "GBP", "pound": "GBP",
    "pounds": "GBP", "quid": "GBP", "jpy": "JPY", "yen": "JPY", "cad": "CAD",
    "canadian dollars": "CAD", "aud": "AUD", "australian dollars": "AUD", "chf": "CHF",
    "swiss francs": "CHF", "francs": "CHF", "mxn": "MXN", "pesos": "MXN", "inr": "INR",
    "rupees": "INR", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "kronor": "SEK",
}  # fmt: skip
_CURRENCY = "|".join(sorted((re.escape(k) for k in (*_SYMBOLS, *_WORDS)), key=len, reverse=True))
_FIGURE = r"\d[\d.,' ]*\d|\d"
_AMOUNT = re.compile(
    rf"^(?:about |around |roughly |approximately |approx |~)?"
    rf"(?:(?P<before>{_CURRENCY}) ?)?(?P<figure>{_FIGURE})(?P<k> ?k)?"
    rf"(?: ?(?P<after>{_CURRENCY}))?(?: total| in total| all in)?$"
)


def parse_money(text: str) -> Money:
    """The amount and currency in `text`; raises `MoneyParseError` when it is not one."""
    if not isinstance(text, str):
        raise MoneyParseError(f"not text: {type(text).__name__}")
    cleaned = re.sub(r"\s+", " ", re.sub(r"\.[-–]$", "", fold(text).strip()).rstrip("."))
    match = _AMOUNT.match(cleaned)
    if match is None:
        raise MoneyParseError(f"cannot read {text[:MAX_INPUT]!r} as an amount of money")
    before, after = match["before"], match["after"]
    if before and after and _code(before) != _code(after):
        raise MoneyParseError(f"two currencies in {text[:MAX_INPUT]!r}")
    amount = _number(match["figure"], text)
    if match["k"]:
        amount *= 1000
    return Money(round(amount, 2), _code(before or after) if (before or after) else None)


def _code(token: str) -> str:
    return _SYMBOLS.get(token) or _WORDS[token]


def _number(figure: str, original: str) -> float:
    # Spaces and apostrophes only ever group thousands ("12 000", "1'200").
    digits = re.sub(r"(?<=\d)[' ](?=\d{3}(?!\d))", "", figure)
    if not re.fullmatch(r"[\d.,]+", digits):
        raise MoneyParseError(f"cannot read {original[:MAX_INPUT]!r}: odd digit grouping")
    marks = {c for c in digits if c in ",."}
    if not marks:
        return float(digits)
    if len(marks) == 2:
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        whole, _, cents = digits.rpartition(decimal)
        return float(_grouped(whole, "." if decimal == "," else ",", original) + "." + cents)
    mark = marks.pop()
    groups = digits.split(mark)
    if all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3:
        return float("".join(groups))
    if len(groups) == 2:
        return float(f"{groups[0]}.{groups[1]}")
    raise MoneyParseError(f"cannot read {original[:MAX_INPUT]!r}: odd digit grouping")


def _grouped(whole: str, mark: str, original: str) -> str:
    groups = whole.split(mark)
    if not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        raise MoneyParseError(f"cannot read {original[:MAX_INPUT]!r}: odd digit grouping")
    return "".join(groups)
