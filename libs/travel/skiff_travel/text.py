"""Text normalisation shared by the catalog, grounding and date parsing.

One function decides what counts as "the same words" so that keys built when the catalog is
loaded and keys built from user text always agree.
"""

from __future__ import annotations

import re
import unicodedata

# Longer input is not a place or a date; cutting it first keeps every later step cheap.
MAX_INPUT = 200

_APOSTROPHES = re.compile(r"['’‘`´\"]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
# "Saint Louis" and "St. Louis", "Ft Worth" and "Fort Worth" are one name.
_TOKEN_SYNONYMS = {"saint": "st", "ste": "st", "ft": "fort", "mt": "mount"}


def fold(text: str, limit: int = MAX_INPUT) -> str:
    """Lower-case `text` and strip accents and compatibility forms ("São" -> "sao", "Ｌ" -> "l").

    Only the first `limit` characters: a name or a date is short; a whole request (evidence
    checks look for values in it) needs a larger limit.
    """
    decomposed = unicodedata.normalize("NFKD", text[:limit])
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Marks go before casefold: casefold would turn "İ" into "i" plus a combining dot.
    return stripped.casefold()


def normalize_key(text: str, limit: int = MAX_INPUT) -> str:
    """The lookup key of a name: folded, punctuation dropped, runs of single letters joined.

    "Washington, D.C." -> "washington dc", "Chi-town" -> "chi town", "Jo'burg" -> "joburg",
    "Saint-Louis" -> "st louis". `limit` as for `fold`.
    """
    folded = _APOSTROPHES.sub("", fold(text, limit).replace("&", " and "))
    tokens = [_TOKEN_SYNONYMS.get(tok, tok) for tok in _NON_WORD.sub(" ", folded).split()]
    joined: list[str] = []
    run = ""
    for tok in tokens:
        if len(tok) == 1 and tok.isalpha():
            run += tok
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(tok)
    if run:
        joined.append(run)
    return " ".join(joined)
