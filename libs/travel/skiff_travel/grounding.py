"""City grounding: turn a place as the user wrote it into one catalog city, or say why not.

`ground_city` tries, in order, and stops at the first step that finds anything:

1. the whole text as a canonical name or alias ("Philly", "NYC", "Chi-town");
2. an airport code or airport name ("LAX", "jfk", "JFK airport", "Heathrow");
3. a place followed by a qualifier that narrows it ("Portland, OR", "Springfield, Illinois",
   "London, UK", "Vancouver BC", "Atlanta Ga") — the qualifier may be a region code or name,
   a country code, name or alias;
4. a typo of a name, alias or airport name with rapidfuzz under a conservative cutoff
   ("Pheonix", "Seatle"), with the qualifier applied to the place part as in step 3.

A shared name grounds to its primary city (Portland -> Portland, OR); with no primary it is
`Ambiguous` (Springfield). Anything else is `Unknown`, with close names as suggestions.
Grounding never raises on any string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from skiff_travel.catalog import Catalog, City, default_catalog
from skiff_travel.text import MAX_INPUT, normalize_key

# Below ~85 a ratio starts accepting a different city ("Austen" would be Boston's neighbour);
# 85 admits one transposition in a 7-letter name ("Pheonix") or one edit in a longer one.
TYPO_CUTOFF = 85.0
SUGGESTION_CUTOFF = 70.0
# Shorter keys are codes and abbreviations ("SF", "LA", "KL"): a one-letter slip is another
# abbreviation, never a typo.
_MIN_FUZZY_LEN = 4
_TIE_MARGIN = 2.0
_AIRPORT_HINT = re.compile(r"\b(airport|intl|international)\b")
_FILLERS = ("the city of ", "city of ", "downtown ", "the ")
# The words around a residence ("we are Dutch", "UK residents", "Australia-based").
_RESIDENCE_FRAME = re.compile(
    r"^(?:(?:i am|im|we are|were|all|i live in|we live in|living in|live in|based in"
    r"|resident in|residents? of|citizens? of|nationals? of|from|in)\s+)+"
    r"|(?:\s+(?:based|residents?|citizens?|nationals?|passports?|passport holders?"
    r"|students?|travell?ers?))+$"
)


@dataclass(frozen=True)
class Grounded:
    """The place is this city. `airport` is set when the user named a specific airport."""

    city: City
    airport: str | None = None

    @property
    def iata(self) -> str:
        """The airport to use: the one the user named, else the city's primary one."""
        return self.airport or self.city.iata


@dataclass(frozen=True)
class Unknown:
    """No catalog city matches. `text` is the input (cut to MAX_INPUT characters)."""

    text: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ambiguous:
    """Several catalog cities match equally well and none is the default reading."""

    text: str
    candidates: tuple[City, ...]


Grounding = Grounded | Unknown | Ambiguous


def ground_city(text: str, catalog: Catalog | None = None) -> Grounding:
    """Ground a place as written by the user to a catalog city.

    Returns `Grounded` for one city, `Ambiguous` when several cities share the name and none
    is primary, and `Unknown` (with up to three suggested city labels) otherwise.
    """
    cat = catalog if catalog is not None else default_catalog()
    raw = text[:MAX_INPUT] if isinstance(text, str) else ""
    key = normalize_key(raw)
    if not key or len(key) > 80:
        return Unknown(raw, ())
    for candidate in _variants(key):
        found = _exact(candidate, raw, cat)
        if found is not None:
            return found
    qualified = _qualified(raw, key, cat)
    if qualified is not None:
        return qualified
    fuzzy = _fuzzy(raw, key, cat)
    if fuzzy is not None:
        return fuzzy
    return Unknown(raw, _suggestions(key, cat))


def ground_country(text: str, catalog: Catalog | None = None) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country as the user wrote it, or None.

    Accepts names, codes and everyday aliases ("US", "the States", "UK", "Holland"), a
    residence said with its frame ("Dutch passport", "UK residents", "Australia-based",
    "living in Canada"), a region only one country has ("Texas" -> US), and, for names of
    five letters or more, a typo under the same cutoff as cities.
    """
    cat = catalog if catalog is not None else default_catalog()
    raw = text[:MAX_INPUT] if isinstance(text, str) else ""
    code = cat.country_code(raw)
    key = normalize_key(raw)
    if code is not None or len(key) > 80:
        return code
    place = _RESIDENCE_FRAME.sub("", key).strip() or key
    code = cat.country_code(place) or _region_country(place, cat)
    if code is not None or len(place) < 5:
        return code
    hit = process.extractOne(place, cat.country_keys(), scorer=fuzz.ratio,
                             score_cutoff=TYPO_CUTOFF)  # fmt: skip
    return cat.country_code(hit[0]) if hit else None


def _region_country(place: str, cat: Catalog) -> str | None:
    """The country of a region only one country has ("Texas"; not "CA", which is also
    Canada's code, nor a name two countries share), then of a trailing country name
    ("Texas USA")."""
    countries = {country for country, _ in cat.regions_for(place)}
    if len(countries) == 1 and len(place) > 2:
        return countries.pop()
    words = place.split()
    for n in (2, 1):
        if len(words) > n and (code := cat.country_code(" ".join(words[-n:]))) is not None:
            return code
    return None


def is_airport_phrase(text: str) -> bool:
    """Whether the text says it names an airport ("the Denver airport", "LAX International")."""
    return bool(_AIRPORT_HINT.search(normalize_key(text)))


def _variants(key: str) -> list[str]:
    """The key, then the key without filler words ("the city of Chicago")."""
    variants = [key]
    for filler in _FILLERS:
        if key.startswith(filler) and len(key) > len(filler):
            variants.append(key[len(filler) :])
    return variants


def _exact(key: str, raw: str, cat: Catalog) -> Grounding | None:
    cities = cat.cities_for_key(key)
    if cities:
        return _choose(raw, cities)
    return _airport(key, cat)


def _airport(key: str, cat: Catalog) -> Grounded | None:
    """An airport code ("lax", "jfk airport") or an airport name ("heathrow")."""
    bare = _AIRPORT_HINT.sub(" ", key).split()
    if len(bare) == 1 and len(bare[0]) == 3 and bare[0].isalpha():
        city = cat.by_iata(bare[0])
        if city is not None:
            return Grounded(city, bare[0].upper())
    named = cat.by_airport_name(key)
    if named is not None:
        code, city = named
        return Grounded(city, code)
    if len(bare) < len(key.split()):
        # "Chicago airport", "Los Angeles International Airport": the city, its main airport.
        cities = cat.cities_for_key(" ".join(bare))
        chosen = _choose(key, cities) if cities else None
        if isinstance(chosen, Grounded):
            return chosen
    return None


def _choose(raw: str, cities: tuple[City, ...]) -> Grounded | Ambiguous:
    """One city, or the primary of several, or an ambiguity."""
    if len(cities) == 1:
        return Grounded(cities[0])
    primaries = [c for c in cities if c.primary]
    if len(primaries) == 1:
        return Grounded(primaries[0])
    return Ambiguous(raw, cities)


# --- qualifiers -------------------------------------------------------------------------------


def _splits(raw: str, key: str) -> list[tuple[str, str]]:
    """(place, qualifier) readings of the text, most explicit first."""
    splits: list[tuple[str, str]] = []
    if "," in raw:
        place, _, qualifier = raw.rpartition(",")
        splits.append((normalize_key(place), normalize_key(qualifier)))
    tokens = key.split()
    for width in (1, 2, 3, 4):
        if len(tokens) > width:
            splits.append((" ".join(tokens[:-width]), " ".join(tokens[-width:])))
    return [(p, q) for p, q in splits if p and q]


def _matches(city: City, qualifier: str, cat: Catalog) -> bool:
    if (city.country, city.region) in cat.regions_for(qualifier):
        return True
    return cat.country_code(qualifier) == city.country


def _is_qualifier(qualifier: str, cat: Catalog) -> bool:
    return bool(cat.regions_for(qualifier)) or cat.country_code(qualifier) is not None


def _place_cities(place: str, cat: Catalog) -> tuple[tuple[City, ...], str | None]:
    """Cities a place part names (by name, alias, code or airport), with the airport if any."""
    for variant in _variants(place):
        cities = cat.cities_for_key(variant)
        if cities:
            return cities, None
        airport = _airport(variant, cat)
        if airport is not None:
            return (airport.city,), airport.airport
    return (), None


def _qualified(raw: str, key: str, cat: Catalog) -> Grounding | None:
    for place, qualifier in _splits(raw, key):
        if not _is_qualifier(qualifier, cat):
            continue
        cities, airport = _place_cities(place, cat)
        if not cities:
            continue
        narrowed = tuple(c for c in cities if _matches(c, qualifier, cat))
        if not narrowed:
            # "Paris, Germany": the place exists, just not there. Suggest what does.
            ranked = sorted(cities, key=lambda c: not c.primary)
            return Unknown(raw, tuple(c.label for c in ranked[:3]))
        chosen = _choose(raw, narrowed)
        if isinstance(chosen, Grounded) and airport is not None:
            return Grounded(chosen.city, airport)
        return chosen
    return None


# --- typos ------------------------------------------------------------------------------------


def _fuzzy(raw: str, key: str, cat: Catalog) -> Grounding | None:
    readings = [(key, None)] + [
        (place, q) for place, q in _splits(raw, key) if _is_qualifier(q, cat)
    ]
    for place, qualifier in readings:
        if len(place) < _MIN_FUZZY_LEN:
            continue
        cities = _typo_cities(place, cat)
        if qualifier is not None:
            cities = tuple(c for c in cities if _matches(c, qualifier, cat))
        if cities:
            return _choose(raw, cities)
    return None


def _typo_cities(place: str, cat: Catalog) -> tuple[City, ...]:
    """Cities whose name, alias or airport name is within the typo cutoff of `place`.

    When two different names score within a hair of each other the typo could be either, so
    both come back and `_choose` reports the ambiguity (unless one is the primary reading).
    """
    choices = [k for k in (*cat.name_keys(), *cat.airport_keys()) if len(k) >= _MIN_FUZZY_LEN]
    hits = process.extract(place, choices, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF, limit=5)
    if not hits:
        return ()
    best = hits[0][1]
    found: list[City] = []
    for choice, score, _ in hits:
        if score < best - _TIE_MARGIN:
            break
        named = cat.cities_for_key(choice)
        if not named:
            airport = cat.by_airport_name(choice)
            named = (airport[1],) if airport else ()
        found.extend(c for c in named if c not in found)
    return tuple(found)


def _suggestions(key: str, cat: Catalog) -> tuple[str, ...]:
    """Up to three city labels that look like the text, best first."""
    place = key.split(" ")
    queries = {key, " ".join(place[:-1])} if len(place) > 1 else {key}
    labels: dict[str, float] = {}
    for query in queries:
        if len(query) < 3:
            continue
        for choice, score, _ in process.extract(
            query, cat.name_keys(), scorer=fuzz.ratio, score_cutoff=SUGGESTION_CUTOFF, limit=5
        ):
            for city in cat.cities_for_key(choice):
                labels[city.label] = max(labels.get(city.label, 0.0), score)
    ranked = sorted(labels.items(), key=lambda item: (-item[1], item[0]))
    return tuple(label for label, _ in ranked[:3])
