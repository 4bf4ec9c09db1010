"""What S3 embeds: a request with its values masked, so clusters follow the kind of work.

Requests of one kind differ mostly in their values, and a sentence-embedding model weighs
names heavily. Unmasked, a dozen hand-written train requests are on average barely more
similar to each other (cosine 0.36) than to SGD's flight, hotel and car requests (0.26),
and split into six clusters at a cut of 0.6; masked, they are one (0.63 among themselves),
and SGD's domains still separate (`bench/results/cluster-threshold.md`). Masked:

* numbers, with ordinal suffixes and clock times ("12th", "10:30", "2pm") → `#`;
* month and weekday names → `#`;
* a capitalised word that does not start a sentence (a place, an airline, a hotel) → `X`,
  one `X` for a run of them ("San Francisco," → `X,`).

Redaction placeholders (`[NAME]`, `[EMAIL]`, …) and "I" are kept. It is a heuristic: a
lowercase place ("phoenix") is not masked, and a capitalised common word mid-sentence is.
"""

from __future__ import annotations

import re

NUMBER = "#"
NAME = "X"
_MONTHS = "january february march april may june july august september october november december"
_ABBREVIATIONS = "jan feb mar apr jun jul aug sep sept oct nov dec"
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday"
_CALENDAR = frozenset(f"{_MONTHS} {_ABBREVIATIONS} {_WEEKDAYS}".split())
_NUMBER = re.compile(r"\d+(?:[:.]\d+)?(?:st|nd|rd|th|am|pm)?", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_EDGES = re.compile(r"^[^\w\[]+|[^\w\]]+$")
_PRONOUN = frozenset({"I", "I'd", "I'm", "I'll", "I've"})


def mask_values(text: str) -> str:
    """`text` with numbers, dates' names and mid-sentence capitalised words masked
    (punctuation around a masked word is kept)."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        for position, word in enumerate(sentence.split()):
            core = _EDGES.sub("", word)
            if not core or _PLACEHOLDER.fullmatch(core) or core in _PRONOUN:
                out.append(word)
            elif _NUMBER.fullmatch(core) or core.casefold() in _CALENDAR:
                out.append(word.replace(core, NUMBER, 1))
            elif position > 0 and core[:1].isupper():
                masked = word.replace(core, NAME, 1)
                if out and out[-1] == NAME:
                    out[-1] = masked  # "San Francisco," is one name
                else:
                    out.append(masked)
            else:
                out.append(word)
    return " ".join(out)
