"""Person names in travel requests, found by the phrases that introduce them.

There is no NER model in the workers, and a capitalised word is as often a city ("I'm flying
to New York"), a month or an odd-cased sentence ("I Want To Book") as a name. So a name is
only looked for right after a cue, and what a cue may take is graded by how sure it is:

* strong cues ("my name is", "name:", "under the name", "for Mr/Mrs/Ms/Dr"): the next one to
  three name words. After "my name is" and "name:" lower-case words count too ("my name is
  john smith"); after a title only capitalised ones.
* list cues ("travelers:", "passengers are", "traveling with", "my wife", "my kids"): several
  capitalised names joined by commas, "and" or "&".
* weak cues ("I'm", "I am", "this is"): capitalised words that are not a city, country or
  region of the travel catalog — two of them, or one that ends the clause ("I'm Sarah,").
* sign-offs ("thanks, Ann", "signed J. Doe"): capitalised words that end the text.

Function words, months, weekdays and the verbs of travel requests end a name. Knowingly
missed: names with no cue ("book it for John"), lower-case names after weak or list cues,
and names that are also places ("I'm Austin." is kept; "I'm Austin Miller" is caught).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from skiff_travel import default_catalog
from skiff_travel.text import normalize_key


class Cue(Enum):
    STRONG = "strong"
    STRONG_LOWER = "strong_lower"
    LIST = "list"
    WEAK = "weak"
    SIGN_OFF = "sign_off"


_RELATIONS = (
    r"wife|husband|partner|spouse|son|daughter|kids?|children|mother|mom|mum|father|dad|"
    r"brother|sister|friend|colleague|coworker|boss|girlfriend|boyfriend|fianc[ée]e?|"
    r"grandma|grandpa|grandmother|grandfather|aunt|uncle|cousin"
)
_CUES: tuple[tuple[re.Pattern[str], Cue], ...] = (
    (re.compile(r"\bmy\s+(?:full\s+)?name(?:\s+is|'s|’s)\b\s*:?", re.I), Cue.STRONG_LOWER),
    # "hotel name:" and "car name:" are slots of their own, not people.
    (
        re.compile(r"(?<!hotel )(?<!car )\b(?:full\s+|last\s+|first\s+|guest\s+)?name\s*:", re.I),
        Cue.STRONG_LOWER,
    ),
    (re.compile(r"\bunder\s+(?:the\s+)?name\s+(?:of\s+)?", re.I), Cue.STRONG_LOWER),
    (re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\b\.?"), Cue.STRONG),
    (
        re.compile(
            r"\b(?:travell?ers?|passengers?|guests?|names|lead\s+passenger|adults?|children|"
            r"kids)\s*(?:are|is|:|-|–)",
            re.I,
        ),
        Cue.LIST,
    ),
    (re.compile(r"\b(?:travell?ing|flying|going|staying)\s+with\b", re.I), Cue.LIST),
    (re.compile(rf"\b(?:my|our)\s+(?:{_RELATIONS})\b\s*,?", re.I), Cue.LIST),
    (re.compile(r"\b(?:I'm|I’m|I\s+am|Im|this\s+is)\b", re.I), Cue.WEAK),
    (
        re.compile(
            r"\b(?:signed|thanks|thank\s+you|regards|best\s+regards|kind\s+regards|cheers|"
            r"sincerely|best)\s*[,:!\-–—]",
            re.I,
        ),
        Cue.SIGN_OFF,
    ),
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[ \t]*([^\W\d_]+(?:['’\-][^\W\d_]+)*\.?)")
_JOINER = re.compile(r"[ \t]*(?:,[ \t]*(?:and\b|&)?|and\b|&)", re.I)
_CLAUSE_END = re.compile(r"[ \t]*(?:[,.;!?)]|$|\n|and\b|here\b)")
_TEXT_END = re.compile(r"[ \t]*[.!]?\s*$")
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "del", "della", "di", "la", "le",
                        "du", "bin", "al", "ibn", "ter"})  # fmt: skip
_MONTHS_DAYS = _words(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday "
    "friday saturday sunday mon tue tues wed thu thur thurs fri sat sun today tomorrow "
    "tonight"
)
_STOP = _words(
    "a an the and or but nor so if then than to from for of in on at by with without into "
    "onto about via per as is are was were be been am i me my we us our you your he she it "
    "they them their this that these those there here please pls thanks thank hi hello hey "
    "yes no not just also only still very really too all any some one two three four five "
    "six seven eight nine ten flying flight flights traveling travelling travel going "
    "looking planning hoping trying thinking visiting heading leaving staying coming "
    "returning booking book need want would like could can will should may might must "
    "interested ready excited happy sorry back new next last this coming fine good great "
    "okay ok sure available free calling writing searching wondering moving done "
    "hotel hotels car cars room rooms ticket tickets insurance economy business first "
    "premium adult adults child children kid kids people person guest guests passenger "
    "passengers traveler travelers traveller travellers nonstop direct round trip one-way "
    "return mr mrs ms miss mx dr prof"
)


@dataclass(frozen=True)
class NameSpan:
    """A person's name at `text[start:end]`."""

    start: int
    end: int


def find_names(text: str) -> list[NameSpan]:
    """Every cued person name in `text`, in order, not overlapping."""
    found: list[NameSpan] = []
    for pattern, cue in _CUES:
        for match in pattern.finditer(text):
            for span in _names_after(text, match.end(), cue):
                if not any(s.start < span.end and span.start < s.end for s in found):
                    found.append(span)
    return sorted(found, key=lambda span: span.start)


def _names_after(text: str, pos: int, cue: Cue) -> Iterator[NameSpan]:
    if cue is Cue.LIST:
        while (span := _name_at(text, pos, allow_lower=False, weak=True)) is not None:
            yield span
            joiner = _JOINER.match(text, span.end)
            if joiner is None:
                return
            pos = joiner.end()
        return
    span = _name_at(text, pos, allow_lower=cue is Cue.STRONG_LOWER, weak=cue is not Cue.STRONG)
    if span is None:
        return
    words = len(text[span.start : span.end].split())
    if cue is Cue.SIGN_OFF and not _TEXT_END.match(text, span.end):
        return
    if cue is Cue.WEAK and words < 2 and not _CLAUSE_END.match(text, span.end):
        return
    yield span


def _name_at(text: str, pos: int, *, allow_lower: bool, weak: bool) -> NameSpan | None:
    """The name words starting at `pos` (one to three, particles aside), or None."""
    words: list[tuple[int, int, str]] = []
    while len([w for w in words if w[2].lower() not in _PARTICLES]) < 3:
        match = _WORD.match(text, pos)
        if match is None:
            break
        word = match.group(1)
        bare = word.rstrip(".")
        lower = bare.lower()
        if lower in _PARTICLES and words:
            # "de la Cruz": particles count only when a capitalised word follows them.
            following = _WORD.match(text, match.end())
            while following is not None and following.group(1).lower() in _PARTICLES:
                following = _WORD.match(text, following.end())
            if following is None or not following.group(1)[0].isupper():
                break
        elif lower in _STOP or lower in _MONTHS_DAYS or not _name_like(bare, allow_lower):
            break
        start = match.start(1)
        initial = len(bare) == 1 and word.endswith(".")
        end = start + (len(word) if initial else len(bare))
        words.append((start, end, bare))
        pos = end
        if word.endswith(".") and not initial:
            break
    while words and words[-1][2].lower() in _PARTICLES:
        words.pop()
    if not words:
        return None
    if weak and _is_place(" ".join(w[2] for w in words)):
        return None
    return NameSpan(words[0][0], words[-1][1])


def _name_like(word: str, allow_lower: bool) -> bool:
    parts = re.split(r"['’\-]", word)
    if allow_lower and word.islower():
        return len(word) > 1
    # "Smith-Jones" and "O'Brien" are names; "London-based" is not.
    return word[0].isupper() and all(p[:1].isupper() or len(p) <= 1 for p in parts[1:] or [""])


def _is_place(words: str) -> bool:
    catalog = default_catalog()
    key = normalize_key(words)
    return bool(
        catalog.by_name(key)
        or catalog.country_code(key)
        or catalog.regions_for(key)
        or catalog.by_airport_name(key)
    )
