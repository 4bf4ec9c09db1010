"""What the request text itself states, checked whatever the model made of it.

Evidence (`evidence`) drops a value the text does not support; this module covers the other
way a value goes wrong: the text says it, and the draft does not carry it faithfully.

* Counts. A party size, a number of rooms or of nights that the text states out of range
  ("-3 adults", "0 guests", "500 people", "0 nights") is a problem on the field it sizes,
  whether the model flipped its sign (3), dropped it (null) or copied it (the rules then
  report it too). The latest statement counts, so an answer ("3 adults", or a bare "3" that
  the draft carries) settles an earlier one. Zero children is a fine count; zero adults not.
* Party sizes. A count the text states in the field's own unit ("2 tickets" for passengers,
  "3 guests" for guests) is the party size, the latest one where it changes ("one ticket.
  Oh, make that 3 tickets"), whatever the model left out or kept. Other units ("people",
  "of us") may size another step of a trip, so they decide nothing.
* Values for another step. A flight's return date the text takes back ("... find me a
  one-way flight") and a policy's dates said only in another step's clause are dropped.
* Date roles. Each date of a pair (departure/return, check-in/check-out, pick-up/drop-off,
  trip start/end) belongs in the slot the text's own cue right before it names ("drop it
  off on March 10"). A model, or the LLM tier told the order was wrong, that moves the
  user's drop-off date into the pick-up slot is put back, so the rules report the order the
  user gave instead of booking a reordered trip; where putting it back would mean guessing
  the other date's role, that is a problem instead. A date without a clear cue stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from skiff_contracts.domains import CarsDraft, FlightsDraft, HotelsDraft, InsuranceDraft
from skiff_contracts.problems import Problem
from skiff_extraction.evidence import NUMBER_WORDS, REQUEST_LIMIT, SIGN, DraftT
from skiff_travel.rules import NIGHTS_MAX, NIGHTS_MIN, PARTY_MAX, PARTY_MIN
from skiff_travel.text import normalize_key

# --- counts -------------------------------------------------------------------------------

# Not "seats": "a van with 12 seats" counts the car's seats, not the party.
_ADULTS = (r"adults?|grown[- ]?ups?|people|persons?|passengers?|pax|guests?|travell?ers?"
           r"|tickets?|of us")  # fmt: skip
_MINORS = r"kids?|children|child|infants?|bab(?:y|ies)|toddlers?|teens?|teenagers?"
_COUNT_WORDS = {
    word: n
    for n, word in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty",
    ))
}  # fmt: skip
_WORDS = "|".join(sorted(_COUNT_WORDS, key=len, reverse=True))
_COUNT = rf"(?:{SIGN}|(?<![-\u2212\w.]))(?P<count>\d+|{_WORDS})\b\s*-?\s*(?:[a-z]+\s+)?"


@dataclass(frozen=True)
class CountRule:
    """The units that state a field's count, and the range the rules allow it."""

    units: str
    low: int
    high: int
    code: str


_PEOPLE = CountRule(rf"{_ADULTS}|{_MINORS}", PARTY_MIN, PARTY_MAX, "party_size")
COUNT_RULES: dict[str, CountRule] = {
    "passengers": _PEOPLE,
    "guests": _PEOPLE,
    "travelers": _PEOPLE,
    "rooms": CountRule("rooms?", PARTY_MIN, PARTY_MAX, "party_size"),
    "nights": CountRule("nights?", NIGHTS_MIN, NIGHTS_MAX, "nights_range"),
}


@dataclass(frozen=True)
class Stated:
    """One count as the text states it."""

    value: int
    minor: bool  # a count of children, for whom zero is a fine count
    said: str
    end: int


def stated_counts(rule: CountRule, text: str) -> list[Stated]:
    """Every count `text` (case-folded) states in `rule`'s units, in order."""
    found = []
    for m in re.finditer(rf"{_COUNT}(?P<unit>{rule.units})\b", text):
        count = _COUNT_WORDS.get(m["count"])
        value = count if count is not None else int(m["count"])
        value = -value if m["sign"] or m["minus"] else value
        minor = re.fullmatch(_MINORS, m["unit"]) is not None
        found.append(Stated(value, minor, m[0].strip(), m.end()))
    return found


def _in_range(rule: CountRule, stated: Stated) -> bool:
    return (0 if stated.minor else rule.low) <= stated.value <= rule.high


def _said_after(value: int, rule: CountRule, rest: str) -> bool:
    """Whether `rest` says `value`, in range, as a count of its own ("3", "three"; not "3rd",
    not "-3")."""
    if not rule.low <= value <= rule.high:
        return False
    words = [w for w, n in (*_COUNT_WORDS.items(), *NUMBER_WORDS.items()) if n == value]
    said = "|".join(re.escape(w) for w in (str(value), *words))
    return re.search(rf"(?<![-\u2212\w.])(?<!minus )(?:{said})(?![\w.])", rest) is not None


def count_problems(draft: BaseModel, text: str) -> tuple[Problem, ...]:
    """A problem for each draft field whose count the text states out of range.

    Per kind of count (adults, children) the latest statement is the one that counts; an
    out-of-range one stands unless the draft's value is in range and the text says it after
    that statement (a bare "3" answering "how many guests?").
    """
    folded = text[:REQUEST_LIMIT].casefold()
    problems = []
    for name in type(draft).model_fields:
        rule = COUNT_RULES.get(name)
        if rule is None:
            continue
        latest = {s.minor: s for s in stated_counts(rule, folded)}
        value = getattr(draft, name)
        for stated in sorted(latest.values(), key=lambda s: s.end):
            if _in_range(rule, stated):
                continue
            if isinstance(value, int) and _said_after(value, rule, folded[stated.end :]):
                continue
            problems.append(
                Problem(
                    code=rule.code,
                    message=f"{name} must be between {rule.low} and {rule.high}: the request"
                    f" says {stated.said!r}",
                    field=name,
                )
            )
            break
    return tuple(problems)


# "a one-way ticket" is no count of tickets.
_ONE_WAY_SAID = re.compile(r"\bone\s*-?\s*way\b")
# Units that count one step's party only: a flight's tickets, a hotel's guests.
OWN_PARTY_UNITS = {"passengers": r"tickets?|passengers?", "guests": r"guests?"}


def stated_party(draft: DraftT, text: str) -> DraftT:
    """The draft with its party size as the text last states it in the field's own unit
    (in range; an out-of-range count is `count_problems`' to report)."""
    folded = text[:REQUEST_LIMIT].casefold()
    update: dict[str, int] = {}
    for name, units in OWN_PARTY_UNITS.items():
        if name not in type(draft).model_fields:
            continue
        rule = CountRule(units, PARTY_MIN, PARTY_MAX, "party_size")
        stated = [s for s in stated_counts(rule, folded) if not _ONE_WAY_SAID.search(s.said)]
        if stated and _in_range(rule, stated[-1]):
            update[name] = stated[-1].value
    return draft.model_copy(update=update) if update else draft


# --- values the text gives another step, or takes back ---------------------------------

_ONE_WAY = r"one ?way"
_ROUND_TRIP = r"round ?trips?|round ?tripper|return (?:flights?|tickets?|trip)|there and back"
# Nouns that open another step of a trip ("a flight", "a hotel"; not "my flight", which a
# policy clause refers to), the policy's own words, and a policy said to take their dates.
_OTHER_STEP = r"flights?|airfare|plane tickets?|hotels?|rooms?|cars?|rental|suv|minivan"
_POLICY = r"insurance|insure|insured|cover|coverage|policy|protection"
_SAME_DATES = (r"(?:same|those|these|trip|trips|trip s) (?:dates|days|nights|period)"
               r"|(?:whole|entire|the) (?:trip|stay)")  # fmt: skip


def _mentions(value: str | None, normalized: str) -> list[int]:
    """Where the normalized text says `value` as whole words (nowhere, for an empty value)."""
    key = normalize_key(value or "")
    if not key:
        return []
    return [m.start() for m in re.finditer(rf"(?<!\S){re.escape(key)}(?!\S)", normalized)]


def _one_way_after_return(draft: FlightsDraft, normalized: str) -> tuple[str, ...]:
    said = _mentions(draft.return_date, normalized)
    kinds = list(re.finditer(rf"\b(?:(?P<one>{_ONE_WAY})|{_ROUND_TRIP})\b", normalized))
    if said and kinds and kinds[-1]["one"] is not None and kinds[-1].start() > said[-1]:
        return ("return_date",)
    return ()


def _dates_of_other_steps(draft: InsuranceDraft, normalized: str) -> tuple[str, ...]:
    if re.search(rf"\b(?:{_SAME_DATES})\b", normalized):
        return ()
    cues = [
        (m.start(), m["policy"] is not None)
        for m in re.finditer(rf"\b(?:(?P<policy>{_POLICY})|{_OTHER_STEP})\b", normalized)
        if m["policy"] or not re.search(r"\b(?:my|our)\s$", normalized[: m.start()])
    ]
    if all(policy for _, policy in cues):
        return ()

    def elsewhere(at: int) -> bool:
        before = [policy for start, policy in cues if start < at]
        return bool(before) and not before[-1]

    return tuple(
        name for name in ("trip_start", "trip_end")
        if (said := _mentions(getattr(draft, name), normalized)) and all(map(elsewhere, said))
    )  # fmt: skip


def withdrawn_fields(draft: BaseModel, text: str) -> tuple[str, ...]:
    """The draft's fields whose values the text says, but not for this step.

    A flight's return date, when the text's last word on the kind of trip, said after the
    date's last mention, is one way ("back on the 10th ... can you find me a one-way
    flight?"). A policy's dates, when the text says them only in another step's clause ("a
    car from Dec 12 to Dec 15, plus a basic insurance policy") and never ties the policy to
    them ("for the trip dates"): the planner then gives the policy the trip's dates.
    """
    normalized = normalize_key(text, REQUEST_LIMIT)
    if isinstance(draft, FlightsDraft) and draft.return_date is not None:
        return _one_way_after_return(draft, normalized)
    if isinstance(draft, InsuranceDraft):
        return _dates_of_other_steps(draft, normalized)
    return ()


# --- date roles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatePair:
    """A draft's two dates and the cues that name each."""

    first: str
    second: str
    first_cues: tuple[str, ...]
    second_cues: tuple[str, ...]


# Only cues that name one slot whoever says them: not "leave" for a flight ("fly to Sydney on
# the 2nd, I want to leave on the 12th" is the return), nor "from", "to" or "until".
DATE_PAIRS: dict[type[BaseModel], DatePair] = {
    FlightsDraft: DatePair(
        "departure_date", "return_date",
        ("depart", "departing", "departure", "departure date", "fly out", "flying out",
         "outbound"),
        ("return", "returning", "return date", "back", "fly back", "flying back", "come back",
         "coming back", "inbound"),
    ),
    HotelsDraft: DatePair(
        "check_in_date", "check_out_date",
        ("check in", "checking in", "checkin", "check in date"),
        ("check out", "checking out", "checkout", "check out date"),
    ),
    CarsDraft: DatePair(
        "pickup_date", "dropoff_date",
        ("pick up", "pick it up", "pick the car up", "pickup", "picking up", "picking it up",
         "pickup date", "pick up date"),
        ("drop off", "drop it off", "drop the car off", "dropoff", "dropping off",
         "dropping it off", "dropoff date", "drop off date", "return date", "return it",
         "return the car", "returning it", "returning the car", "bring it back",
         "bring the car back"),
    ),
    InsuranceDraft: DatePair(
        "trip_start", "trip_end",
        ("start", "starts", "starting", "begin", "begins", "beginning", "leave", "leaving",
         "depart", "departing"),
        ("end", "ends", "ending", "return", "returning", "back"),
    ),
}  # fmt: skip
# A cue must stand right before its date, with at most two of these words between ("drop it
# off on the 10th"). Farther away a cue often belongs to another clause: in "pick it up from
# SFO till the 12th" the 12th is the drop-off. A date read that loosely stays where it is.
CUE_FILLERS = frozenset({"on", "the", "by", "for", "at", "around", "about"})
_MAX_FILLERS = 2


def _cued(words: list[str], pair: DatePair) -> str | None:
    """'first' or 'second' when `words` (the text before a date) end with a cue of the pair."""
    for _ in range(_MAX_FILLERS + 1):
        tail = " ".join(words[-4:])
        for role, cues in (("first", pair.first_cues), ("second", pair.second_cues)):
            if any(f" {tail}".endswith(f" {cue}") for cue in cues):
                return role
        if not words or words[-1] not in CUE_FILLERS:
            return None
        words = words[:-1]
    return None


def date_role(value: str | None, text: str, pair: DatePair) -> str | None:
    """The role the text's cues give `value` ('first' or 'second'), when every cued mention
    of it agrees; None when it is not found, not cued, or cued both ways."""
    roles = set()
    for start in _mentions(value, text):
        role = _cued(text[:start].split(), pair)
        if role is not None:
            roles.add(role)
    return roles.pop() if len(roles) == 1 else None


def placed_dates(draft: DraftT, text: str) -> tuple[DraftT, tuple[Problem, ...]]:
    """The draft's pair of dates in the slots the text's cues name, and a problem for a date
    the cues contradict that cannot be moved without guessing.

    Both dates cued for each other's slot: swapped. One cued for the other slot, which is
    empty: moved there. One cued for the other slot, which holds a date without a cue: a
    `date_role` problem (a business rule, so the next tier reads it again and then the user
    is asked): a swap would give the uncued date a role the user never gave it.
    """
    pair = DATE_PAIRS.get(type(draft))
    if pair is None:
        return draft, ()
    normalized = normalize_key(text, REQUEST_LIMIT)
    first, second = getattr(draft, pair.first), getattr(draft, pair.second)
    first_role = date_role(first, normalized, pair)
    second_role = date_role(second, normalized, pair)
    if (first_role, second_role) == ("second", "first") or (
        (first_role == "second" and second is None) or (second_role == "first" and first is None)
    ):
        return draft.model_copy(update={pair.first: second, pair.second: first}), ()
    if first_role == "second" and second_role is None:
        return draft, (_misplaced(pair.first, first, pair.second),)
    if second_role == "first" and first_role is None:
        return draft, (_misplaced(pair.second, second, pair.first),)
    return draft, ()


def _misplaced(field: str, value: str, meant: str) -> Problem:
    message = f"{field} {value!r} is what the request says for the {meant.replace('_', ' ')}"
    return Problem(code="date_role", message=message, field=field)
