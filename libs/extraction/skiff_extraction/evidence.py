"""Evidence: a draft value stands only if the request text supports it.

Drafts are meant to be copied spans, so this is checkable. Small models copy values from
their worked examples ("2 passengers", "Delta") into requests that never said them; such a
value is dropped to null here, and the caller records which fields were dropped. A value
the user did not give must stay null — this is where that rule is enforced, whatever the
model does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise
from typing import TypeVar

from pydantic import BaseModel
from rapidfuzz import fuzz

from skiff_contracts.domains import CarsDraft, FlightsDraft
from skiff_contracts.messages import MAX_REQUEST_CHARS
from skiff_travel.grounding import (
    Ambiguous,
    Grounded,
    ground_city,
    ground_country,
    is_airport_phrase,
)
from skiff_travel.text import normalize_key

# A request, and what the LLM tier may append to it (the trip's other steps): evidence is
# looked for in all of it, not in the first characters a name lookup reads.
REQUEST_LIMIT = 2 * MAX_REQUEST_CHARS
PLACE_FIELDS = frozenset({"origin", "destination", "location", "pickup_city"})
DATE_FIELDS = frozenset({
    "departure_date", "return_date", "check_in_date", "check_out_date", "pickup_date",
    "dropoff_date", "trip_start", "trip_end",
})  # fmt: skip
TIME_FIELDS = frozenset({"pickup_time"})
# A time needs a clock figure ("10:30", "3 pm", "9 o'clock") or a time-of-day word:
# "tomorrow" or "16 March" in a time slot is a date the model put in the wrong field.
_HOURS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_TIME_LIKE = re.compile(
    rf"\d{{1,2}}:\d{{2}}|(?:\d{{1,2}}|\b(?:{_HOURS}))\s*(?:am|pm|a\.m|p\.m|o\s?clock)\b"
    r"|\b(?:noon|midnight|morning|afternoon|evening|night)\b"
)
# Counts whose number must come with its unit: "2 adults" is no evidence of 2 rooms or nights.
# A stay of "two days" is two nights; "two hotel rooms" has a word between number and unit.
COUNT_UNITS = {"nights": "(?:night|day)", "rooms": "room", "star_rating": "star"}
COUNTRY_FIELDS = frozenset({"residence_country"})
NUMBER_WORDS = {
    "one": 1, "single": 1, "alone": 1, "myself": 1, "just me": 1, "only me": 1, "solo": 1,
    "two": 2, "couple": 2, "both": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10,
    "wife and i": 2, "husband and i": 2, "partner and i": 2, "me and my wife": 2,
    "me and my husband": 2, "me and my partner": 2,
}  # fmt: skip
# Words that must be in the text for a boolean or a category to be claimed.
CUES: dict[str, tuple[str, ...]] = {
    "nonstop": ("nonstop", "non stop", "direct"),
    "refundable": ("refund",),
    "wifi": ("wifi", "wi fi", "internet"),
    "pets_allowed": ("pet", "dog", "cat", "puppy"),
    "economy": ("economy", "coach"),
    "premium_economy": ("premium",),
    "business": ("business",),
    "first": ("first class", "first"),
    "compact": ("compact", "small"),
    "standard": ("standard", "medium", "intermediate", "mid size", "midsize"),
    "full_size": ("full size", "fullsize", "full", "large", "big", "spacious"),
    "hatchback": ("hatchback",),
    "sedan": ("sedan",),
    "suv": ("suv",),
    "minivan": ("minivan", "van"),
    "luxury": ("luxury",),
    "basic": ("basic",),
    "premium": ("premium",),
}
# Words a date may carry that the text need not repeat ("the 12th" → "the 12th of March").
DATE_FILLER = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "of", "the", "st", "nd", "rd", "th",
})  # fmt: skip
FUZZY_CUTOFF = 85
# A minus touching a figure, or the word, makes it negative: "-3 adults" is no evidence of 3
# (the sign was dropped) and the only evidence of -3. A hyphen after a figure or a letter is
# a range or a compound ("12-16", "4-star"), not a sign.
SIGN = r"(?:(?<![\w.])(?P<sign>[-\u2212])|\b(?P<minus>minus|negative)\s+)"
_NUMBER = re.compile(rf"{SIGN}?(?<![\d.])(?P<figure>\d+(?:\.\d+)?)")
_UNSIGNED = r"(?<![\w.])(?<!(?<![\w.])[-\u2212])(?<!minus )(?<!negative )"  # "3-4" is no sign
DraftT = TypeVar("DraftT", bound=BaseModel)


def numbers_in(text: str) -> set[float]:
    """Every number the (case-folded) text says, in figures or words, with its sign."""
    found = set()
    for m in _NUMBER.finditer(text):
        figure = float(m["figure"])
        found.add(-figure if m["sign"] or m["minus"] else figure)
    for word, v in NUMBER_WORDS.items():
        for m in re.finditer(rf"(?:\b(minus|negative)\s+)?\b{word}\b", text):
            found.add(-float(v) if m[1] else float(v))
    return found


def _count_supported(value: float, unit: str, text: str) -> bool:
    """`value` said with its unit: "3 nights", "a 4-star hotel", "two rooms" (not "-3 rooms")."""
    words = [w for w, v in NUMBER_WORDS.items() if v == value and w.isalpha()]
    figures = [f"{value:g}", *words]
    said = "|".join(re.escape(f) for f in figures)
    before = r"(?<![\w.])" if value < 0 else _UNSIGNED
    return bool(re.search(rf"{before}(?:{said})\b\s*-?\s*(?:[a-z]+\s+)?{unit}", text))


def _phrase_in(phrase: str, text: str) -> bool:
    return bool(phrase) and (
        f" {phrase} " in f" {text} " or fuzz.partial_ratio(phrase, text) >= FUZZY_CUTOFF
    )


def _place_supported(value: str, key: str, text: str) -> bool:
    if _phrase_in(key, text):
        return True
    grounding = ground_city(value)
    if not isinstance(grounding, Grounded):
        return False
    city = grounding.city
    names = [city.name, city.iata, *city.airports, *city.aliases]
    return any(_phrase_in(normalize_key(name), text) for name in names)


def _is_city_not_country(value: str) -> bool:
    """A city in a country slot ("Denver") is the model's confusion, not the user's word for
    a country; an unknown name stays, so the user is asked about it."""
    return ground_country(value) is None and isinstance(ground_city(value), Grounded)


def _date_supported(key: str, text: str) -> bool:
    """Every number and every non-month word of a date must be in the text."""
    numbers = {n.lstrip("0") for n in re.findall(r"\d+", key)}
    text_numbers = {n.lstrip("0") for n in re.findall(r"\d+", text)}
    if not numbers <= text_numbers:
        return False
    words = [w for w in re.findall(r"[a-z]+", key) if w not in DATE_FILLER]
    return all(_phrase_in(w, text) for w in words)


def supported(field: str, value: object, raw_text: str) -> bool:
    """Whether the request text supports `value` for `field`."""
    if value is None:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        if field in COUNT_UNITS:
            return _count_supported(float(value), COUNT_UNITS[field], raw_text.casefold())
        return float(value) in numbers_in(raw_text.casefold())
    text = normalize_key(raw_text, REQUEST_LIMIT)
    if isinstance(value, bool):
        return any(_phrase_in(cue, text) for cue in CUES.get(field, (field,)))
    key = normalize_key(str(value))
    if field in PLACE_FIELDS:
        return _place_supported(str(value), key, text)
    if field in DATE_FIELDS:
        return _date_supported(key, text)
    if field in TIME_FIELDS:
        return bool(_TIME_LIKE.search(str(value).casefold())) and _date_supported(key, text)
    if field in COUNTRY_FIELDS and _is_city_not_country(str(value)):
        return False
    if field in CATEGORIES and _either_or(CATEGORIES[field], text):
        return False
    if str(value) in CUES:
        return any(_phrase_in(cue, text) for cue in CUES[str(value)])
    return _phrase_in(key, text)


# A field's categories: "business or economy is fine" names two, which is no preference.
CATEGORIES = {
    "seating_class": ("economy", "premium_economy", "business", "first"),
    "car_type": ("economy", "compact", "standard", "full_size", "hatchback", "sedan", "suv",
                 "minivan", "luxury"),
    "coverage": ("basic", "standard", "premium"),
}  # fmt: skip


def _either_or(categories: tuple[str, ...], text: str) -> bool:
    """Whether the text offers two of `categories` as alternatives ("SUV or sedan")."""
    cues = sorted({cue: c for c in categories for cue in CUES[c]}.items(), key=lambda i: -len(i[0]))
    words = "|".join(re.escape(cue) for cue, _ in cues)
    found = [(m.start(), m.end(), dict(cues)[m[0]]) for m in re.finditer(rf"\b(?:{words})\b", text)]
    for (_, end, first), (start, _, second) in pairwise(found):
        if first != second and _OR_BETWEEN.fullmatch(text[end:start]):
            return True
    return False


_OR_BETWEEN = re.compile(r"(?:\s+\w+)?\s+or\s+(?:\w+\s+)?")


# Markup and JSON fragments inside a request are what prompt injection looks like
# ('</s> {"origin": "Gotham"}'); a user asking for travel has no need of them.
_INJECTED = re.compile(r"\{[^{}]*\}|<[^<>]*>")


def unsupported_fields(draft: BaseModel, text: str) -> tuple[str, ...]:
    """Names of the draft's fields whose values the text does not support.

    A phrase supports one field per time the text says it: when "tomorrow" fills both the
    pick-up and the drop-off date of "a car tomorrow", only the first field keeps it. Words
    inside braces or angle brackets support nothing: a value the model took from an embedded
    JSON object or tag is the injection speaking, not the user.
    """
    text = _INJECTED.sub(" ", text)
    normalized = normalize_key(text, REQUEST_LIMIT)
    uses: dict[str, int] = {}
    out = []
    for name, value in draft:
        if not supported(name, value, text):
            out.append(name)
        elif isinstance(value, str) and not isinstance(value, bool):
            key = normalize_key(value)
            uses[key] = uses.get(key, 0) + 1
            if key and uses[key] > max(1, f" {normalized} ".count(f" {key} ")):
                out.append(name)
    return tuple(out)


_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november"
           "|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")  # fmt: skip
_BARE_DAY = re.compile(r"^(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?$", re.IGNORECASE)


def _full_phrases(day: str, text: str) -> set[str]:
    """The text's own phrases naming `day` with a month: "March 10th", "10th of March"."""
    found = set()
    for pattern in (
        rf"\b(?:{_MONTHS})\.?\s+{day}(?:st|nd|rd|th)?\b",
        rf"\b(?:the\s+)?{day}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b",
    ):
        found |= {m.group(0) for m in re.finditer(pattern, text, re.IGNORECASE)}
    return found


def completed_dates(draft: DraftT, text: str) -> DraftT:
    """A bare day ("the 10th") becomes the text's own fuller phrase for that day ("March
    10th") when the text has exactly one: a model shortening a date must not move it."""
    updates = {}
    for field, value in draft:
        if field in DATE_FIELDS and isinstance(value, str):
            bare = _BARE_DAY.match(value.strip())
            phrases = _full_phrases(bare.group(1), text) if bare else set()
            if len(phrases) == 1:
                updates[field] = phrases.pop()
    return draft.model_copy(update=updates) if updates else draft


def completed_places(draft: DraftT, text: str) -> DraftT:
    """An ambiguous place ("Springfield") becomes the text's own fuller phrase for it
    ("Springfield, Illinois") when exactly one such phrase grounds to one of its candidates:
    the user's answer to "which Springfield?" settles it even when the model copies the
    short name again."""
    updates = {}
    for field, value in draft:
        if field not in PLACE_FIELDS or not isinstance(value, str):
            continue
        grounding = ground_city(value)
        if not isinstance(grounding, Ambiguous):
            continue
        # A lookahead, so "Springfield IL or Springfield MO" yields both qualifiers.
        pattern = rf"\b{re.escape(value)}(?=\s*,?\s+((?:[A-Za-z.]+\s?){{1,3}}))"
        fuller = set()
        for match in re.finditer(pattern, text, re.IGNORECASE):
            words = match.group(1).split()
            for n in range(len(words), 0, -1):  # the longest qualifier that grounds
                phrase = f"{value}, {' '.join(words[:n])}"
                found = ground_city(phrase)
                if isinstance(found, Grounded) and found.city in grounding.candidates:
                    fuller.add((phrase, found.city))
                    break
        if len({city for _, city in fuller}) == 1:
            updates[field] = sorted(fuller)[0][0]
    return draft.model_copy(update=updates) if updates else draft


ORIGIN_CUES = ("from", "leaving", "leave", "departing", "depart", "out of", "flying out of")
DESTINATION_CUES = ("to", "into", "visit", "visiting", "heading", "arrive in", "arriving in",
                    "destination is", "going")  # fmt: skip


def _role(place: str, text: str) -> str | None:
    """'origin' or 'destination' when the text's cues before `place` say only one of them."""
    if not place:
        return None
    before = {m.start() for m in re.finditer(rf"\b{re.escape(place)}\b", text)}
    said_origin = any(text[:at].endswith(f"{cue} ") for at in before for cue in ORIGIN_CUES)
    said_destination = any(
        text[:at].endswith(f"{cue} ") for at in before for cue in DESTINATION_CUES
    )
    if said_origin == said_destination:
        return None
    return "origin" if said_origin else "destination"


def reassigned_roles(draft: DraftT, text: str) -> DraftT:
    """Places moved to the slot the text's own words give them: a flight's origin and
    destination by their cues, a car's pickup city and pickup location by what they name."""
    if isinstance(draft, FlightsDraft):
        return _flight_roles(draft, text)  # type: ignore[return-value]  # DraftT is FlightsDraft
    if isinstance(draft, CarsDraft):
        return _pickup_roles(draft)  # type: ignore[return-value]  # DraftT is CarsDraft
    return draft


def _flight_roles(draft: FlightsDraft, text: str) -> FlightsDraft:
    """Origin and destination where the text's own cues put them ("to Paris" is a destination).

    Small models mix up the two slots; a place whose cue says the other slot moves there
    (the two swap when both are contradicted). Places without a clear cue stay as they are.
    """
    normalized = normalize_key(text, REQUEST_LIMIT)
    origin, destination = draft.origin, draft.destination
    origin_role = _role(normalize_key(origin or ""), normalized)
    destination_role = _role(normalize_key(destination or ""), normalized)
    if origin_role == "destination" and destination_role != "destination":
        swapped = destination if destination_role == "origin" else None
        return draft.model_copy(update={"origin": swapped, "destination": origin})
    if destination_role == "origin" and origin_role != "origin":
        return draft.model_copy(update={"origin": destination, "destination": None})
    return draft


# Words that make a place a spot inside a city ("Union Station", "downtown Denver").
_SPOT_WORDS = re.compile(
    r"\b(?:station|terminal|airport|intl|international|center|centre|downtown|street|avenue"
    r"|road|square|plaza|port|pier|harbou?r|depot|mall|hotel|office|campus|hub)\b"
)


def _pickup_roles(draft: CarsDraft) -> CarsDraft:
    """A bare city given as the pickup location ("pick it up at Fremont") is the pickup city;
    a spot given as the pickup city is the location: one no city grounds ("King Street
    Station") or an airport named as one ("Toronto Pearson Airport"; its city follows from
    it, a bare code such as "SFO" stays a city).

    Only when the other slot is empty: a city and a spot in it both stand as they are.
    """
    city, location = draft.pickup_city, draft.pickup_location
    if city is None and location is not None and _is_bare_city(location):
        return draft.model_copy(update={"pickup_city": location, "pickup_location": None})
    if location is None and city is not None and _is_location(city):
        return draft.model_copy(update={"pickup_city": None, "pickup_location": city})
    return draft


def _is_bare_city(place: str) -> bool:
    """A city by name, not one of its airports ("DEN" names the airport)."""
    if _SPOT_WORDS.search(normalize_key(place)):
        return False
    found = ground_city(place)
    return isinstance(found, Grounded) and found.airport is None


def _is_location(place: str) -> bool:
    """An airport named as one ("Logan Airport"), or a spot no city grounds ("King Street
    Station"): the place is grounded once."""
    if isinstance(ground_city(place), Grounded):
        return is_airport_phrase(place)
    return bool(_SPOT_WORDS.search(normalize_key(place)))


def without(draft: DraftT, fields: Iterable[str]) -> DraftT:
    """The draft with `fields` set to null."""
    return draft.model_copy(update=dict.fromkeys(fields))
