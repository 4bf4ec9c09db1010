"""Resolve dates and times as users write them ("the 14th", "next Monday", "half past 3").

Date semantics (checked against the SGD development data, reference Friday 2019-03-01):

* "today", "later today", "tonight" -> the reference; "tomorrow" -> +1; "day after tomorrow"
  -> +2; "in 3 days", "in two weeks", "a week from today" -> reference + that.
* "next Monday" is the first Monday strictly after the reference (SGD: from Friday
  2019-03-01, next Monday is 2019-03-04 and next Friday 2019-03-08).
* "this Sunday", "coming Sunday" -> the first Sunday on or after the reference.
* "Monday next week" -> the Monday of the calendar week (Monday to Sunday) after the
  reference's; "Saturday this week" -> the Saturday of the reference's week, which may lie in
  the past (the rules then report it).
* A bare weekday ("Sunday"), a bare day ("the 14th") or a month and day without a year
  ("March 14th", "3/14") is the first such date on or after the *base*: `after` when given
  (the departure date for a return date, the check-in date for a check-out), else the
  reference. Inference never produces a date before the base.
* "14th of this month" / "of next month" are taken literally, even when that is in the past.
* An explicit year is taken literally. Numeric dates are US month/day ("3/14"), falling back
  to day/month when the first number cannot be a month ("14/3"); "14.03.2019" is day.month.
* A weekday given beside a date ("Friday, March 8th") must agree with it.
* Vague periods ("next week", "this weekend", "March", "soon") raise `DateParseError`: they
  are not a date, and picking one would invent a value the user did not give.
* A date the calendar does not have ("February 30", "31 April", "2027-02-29") raises
  `ImpossibleDateError`, as does one past either end of the calendar (a reference near
  9999-12-31 plus a day): the text was read, the date cannot exist. Date arithmetic never
  raises anything else.

Time semantics:

* "17:30", "5:30 pm", "5 pm", "noon", "midnight", "half past 3", "quarter to 8",
  "3 o'clock", number words ("five thirty pm"), and a part of the day before or after the
  time ("morning 7", "4 in the evening", "8 at night").
* "H:MM" with nothing else is a 24-hour time as written ("10:30" -> 10:30, "5:30" -> 05:30).
* A bare hour from 1 to 12 with no am/pm or part of the day ("at 5") is ambiguous and raises
  `TimeParseError`, as does a part of the day alone ("morning"): neither is a time.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, time, timedelta

from skiff_travel.text import MAX_INPUT, fold


class DateParseError(ValueError):
    """The text is not a date this module can read (or is too vague to be one)."""


class ImpossibleDateError(DateParseError):
    """The text reads as a date the calendar does not have ("February 30")."""


class TimeParseError(ValueError):
    """The text is not a time of day this module can read (or is ambiguous)."""


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            (),
            ("january", "jan"),
            ("february", "feb", "febuary"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        )
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed", "weds"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        )
    )
    for name in names
}
_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_ORDINAL_UNITS = [
    "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
    "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
    "sixteenth", "seventeenth", "eighteenth", "nineteenth",
]  # fmt: skip
_ORDINAL_TENS = {"twentieth": 20, "thirtieth": 30}


def _number_words() -> tuple[dict[str, int], dict[str, int]]:
    cardinals = {word: n for n, word in enumerate(_UNITS)}
    ordinals = {word: n for n, word in enumerate(_ORDINAL_UNITS) if n}
    for tens_word, tens in _TENS.items():
        cardinals[tens_word] = tens
        for n in range(1, 10):
            cardinals[f"{tens_word} {_UNITS[n]}"] = tens + n
    ordinals.update(_ORDINAL_TENS)
    for tens_word in ("twenty", "thirty"):
        for n in range(1, 10):
            ordinals[f"{tens_word} {_ORDINAL_UNITS[n]}"] = _TENS[tens_word] + n
    return cardinals, ordinals


_CARDINALS, _ORDINALS = _number_words()


def _alternation(words: Iterable[object]) -> str:
    return "|".join(sorted((re.escape(str(w)) for w in words), key=len, reverse=True))


_MONTH_RE = rf"(?P<month>{_alternation(_MONTHS)})"
_ORD_RE = _alternation(_ORDINALS)
_DAY_RE = rf"(?P<day>\d{{1,2}}(?:st|nd|rd|th)?|{_ORD_RE})"
_YEAR_RE = r"(?P<year>\d{4})"
_WEEKDAY_RE = rf"(?P<weekday>{_alternation(_WEEKDAYS)})"
_COUNT_RE = rf"(?P<count>\d{{1,3}}|a|an|one|{_alternation(w for w in _CARDINALS if w != 'zero')})"

# Longest search window for "the next Feb 29": two leap years apart at most, plus margin.
_MAX_YEARS_AHEAD = 8
_LEADING_WORDS = re.compile(
    r"^(?:(?:on|for|from|by|until|till|til|through|thru|starting|beginning|leaving|returning"
    r"|departing|arriving|around|about|at|the day of)\s+)+"
)
_VAGUE = re.compile(
    r"\b(?:weekend|week|month|soon|asap|sometime|whenever|later|early|mid|end|beginning"
    r"|summer|winter|spring|autumn|fall|holidays?|christmas|easter)\b"
)


def resolve_date(text: str, reference: date, *, after: date | None = None) -> date:
    """Resolve a date as the user wrote it.

    `reference` is "today". `after`, when given, is the earlier date of a pair (departure for
    a return date, check-in for check-out): a bare day, weekday or month/day then resolves to
    the first such date on or after it. Raises `DateParseError` for text it cannot read.
    """
    if not isinstance(text, str):
        raise DateParseError(f"not text: {type(text).__name__}")
    base = after or reference
    cleaned = _clean_date(text)
    if not cleaned:
        raise DateParseError(f"no date in {text[:MAX_INPUT]!r}")
    try:
        return _resolve_clean_date(cleaned, text, reference, base)
    except ImpossibleDateError:
        raise
    except DateParseError:
        core = _date_core(cleaned)
        if not core or core == cleaned:
            raise
        return _resolve_clean_date(core, text, reference, base)


def date_range_end(text: str, end: int) -> str:
    """One end (0: the first, 1: the last) of a date range written as one value ("June
    12-19", "12-19 June", "March 3 to March 6", "3/15/2027 - 3/22/2027"); any other text
    comes back unchanged. A model may copy a whole range into both dates of a pair."""
    if not isinstance(text, str):
        return text
    cleaned = _DATE_NOUN.sub("", re.sub(r"^(?:from|between|our|my|the dates?) ", "",
                                        _clean_date(text)))  # fmt: skip
    day = r"(\d{1,2})(?:st|nd|rd|th)?"
    year = r"((?:,? \d{4})?)"
    dash = r" ?(?:-|–|to|until|till|through|thru|and) ?"
    month_first = re.fullmatch(rf"([a-z]+\.?) {day}{dash}{day}{year}", cleaned)
    if month_first and month_first[1].rstrip(".") in _MONTHS:
        month, first, last, yr = month_first.groups()
        return f"{month} {(first, last)[end]}{yr}"
    day_first = re.fullmatch(rf"{day}{dash}{day} (?:of )?([a-z]+){year}", cleaned)
    if day_first and day_first[3] in _MONTHS:
        first, last, month, yr = day_first.groups()
        return f"{(first, last)[end]} {month}{yr}"
    halves = re.fullmatch(r"(.+?)(?: - | – | to | until | till | through | thru )(.+)", cleaned)
    if halves is None:
        return text
    first, last = halves.groups()
    shared_year = re.search(r",? \d{4}$", last)
    if shared_year and not re.search(r"\d{4}", first):
        first += shared_year[0]  # "Oct 2 - Oct 6, 2027"
    return (first, last)[end]


def _resolve_clean_date(cleaned: str, text: str, reference: date, base: date) -> date:
    try:
        numeric = _numeric_date(cleaned, base)
        if numeric is not None:
            return numeric
        words = _words(cleaned)
        for parser in (_relative, _weekday_phrase, _calendar_date):
            found = parser(words, reference, base)
            if found is not None:
                return found
    except DateParseError:
        raise
    except (OverflowError, ValueError):
        # Arithmetic past date.min or date.max ("tomorrow" of 9999-12-31).
        raise ImpossibleDateError(f"{text[:MAX_INPUT]!r} falls outside the calendar") from None
    raise DateParseError(f"cannot read {text[:MAX_INPUT]!r} as a date")


def resolve_duration(text: str) -> timedelta | None:
    """A length of stay as written ("10 days", "for two weeks", "a fortnight", "3 nights",
    "a ten-day trip"), or None when the text is not one. A day or a night is one calendar
    day: 3 days from the 5th end on the 8th, as a rental or a hotel stay counts them."""
    if not isinstance(text, str):
        return None
    words = re.sub(r"^(?:for|about|around|roughly|just|only)\s+", "", _words(_clean_date(text)))
    if re.fullmatch(r"(?:a |one )?fortnight", words):
        return timedelta(days=14)
    unit = r"(?P<unit>days?|nights?|weeks?)"
    pattern = rf"(?:{_COUNT_RE} )?{unit}(?: (?:long|trip|stay|away|holiday|vacation))?"
    m = re.fullmatch(rf"(?:a |an )?{pattern}", words)
    if m is None or (m["count"] is None and not words.startswith(("a ", "an "))):
        return None
    count = _count(m["count"]) if m["count"] else 1
    return timedelta(days=count * (7 if m["unit"].startswith("week") else 1))


# Words around a date that are not part of it ("tomorrow's trip", "our June 12 getaway").
_DATE_OWNER = re.compile(r"^(?:our|my|this|that) ")
_DATE_NOUN = re.compile(r"(?:['’]s)? (?:trip|getaway|holiday|vacation|journey|break|flight)$")


def _date_core(cleaned: str) -> str:
    """A date read again without the words people put around it: an owner ("our"), the trip
    noun after it ("tomorrow's trip"), anything after a comma that is not a year ("March 10,
    one adult")."""
    core = _DATE_NOUN.sub("", _DATE_OWNER.sub("", cleaned))
    head, comma, tail = core.partition(",")
    if comma and not _names_a_date(_words(tail)):
        core = head
    return core.strip()


def _names_a_date(words: str) -> bool:
    """Whether the words name part of a date (a month, a weekday, a year, an ordinal day):
    such a tail ("Friday, March 3") is the date itself, which must agree with its head."""
    tokens = words.split()
    return any(
        t in _MONTHS or t in _WEEKDAYS or re.fullmatch(r"\d{4}|\d{1,2}(?:st|nd|rd|th)", t)
        for t in tokens
    )


def _clean_date(text: str) -> str:
    lowered = fold(text).strip()
    return re.sub(r"\s+", " ", lowered)


def _words(cleaned: str) -> str:
    """Punctuation to spaces, "twenty-first" to "twenty first", leading fillers dropped."""
    spaced = re.sub(r"[^0-9a-z]+", " ", cleaned.replace("'", "")).strip()
    return _LEADING_WORDS.sub("", spaced).strip()


def _make(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        if 1 <= month <= 12 and day >= 1:
            raise ImpossibleDateError(f"no such date: {text!r}") from None
        raise DateParseError(f"no such date: {text!r}") from None


def _numeric_date(cleaned: str, base: date) -> date | None:
    """ISO "2019-03-12", US "3/14" or "3/14/2019", European "14.03.2019"."""
    text = cleaned.rstrip(".").strip()
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
        return _make(int(m[1]), int(m[2]), int(m[3]), text)
    if m := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})", text):
        return _make(_full_year(m[3]), int(m[2]), int(m[1]), text)
    if m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})(?:[/-](\d{2}|\d{4}))?", text):
        first, second = int(m[1]), int(m[2])
        month, day = (first, second) if first <= 12 else (second, first)
        if m[3] is not None:
            return _make(_full_year(m[3]), month, day, text)
        return _next_month_day(month, day, base, text)
    return None


def _full_year(digits: str) -> int:
    return int(digits) + 2000 if len(digits) == 2 else int(digits)


def _next_month_day(month: int, day: int, base: date, text: str) -> date:
    """The first `month`/`day` on or after `base`."""
    if not 1 <= month <= 12 or day < 1:
        raise DateParseError(f"no such date: {text!r}")
    for year in range(base.year, base.year + _MAX_YEARS_AHEAD + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= base:
            return candidate
    raise ImpossibleDateError(f"no such date: {text!r}")  # "February 30", "31 April"


def _next_day(day: int, base: date, text: str) -> date:
    """The first day-of-month `day` on or after `base` ("the 14th")."""
    if day < 1:
        raise DateParseError(f"no such day of the month: {text!r}")
    if day > 31:
        raise ImpossibleDateError(f"no month has that day: {text!r}")
    year, month = base.year, base.month
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1] and date(year, month, day) >= base:
            return date(year, month, day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise DateParseError(f"no such day of the month: {text!r}")  # unreachable for 1..31


def _day_number(token: str) -> int:
    if token in _ORDINALS:
        return _ORDINALS[token]
    return int(re.sub(r"(st|nd|rd|th)$", "", token))


def _count(token: str) -> int:
    if token in ("a", "an"):
        return 1
    if token.isdigit():
        return int(token)
    return _CARDINALS[token]


def _relative(words: str, reference: date, base: date) -> date | None:
    """today, tomorrow, day after tomorrow, in N days/weeks, N days from now."""
    # "tomorrow morning" is tomorrow; the part of the day is a time, not a date.
    text = re.sub(r" (?:morning|afternoon|evening|night)$", "", words)
    if text in ("today", "later today", "tonight", "now", "right now") or re.fullmatch(
        r"this (?:morning|afternoon|evening)|later tonight", text
    ):
        return reference
    if text in ("tomorrow", "tmrw", "tmr", "tomorow", "tommorow", "tommorrow"):
        return reference + timedelta(days=1)
    if re.fullmatch(r"(?:the )?day after (?:tomorrow|tomorow|tommorow|tommorrow)", text):
        return reference + timedelta(days=2)
    if text == "yesterday":
        return reference - timedelta(days=1)
    pattern = rf"(?:in )?{_COUNT_RE} (?P<unit>days?|weeks?)(?: (?:from (?:now|today)|later))?"
    if m := re.fullmatch(pattern, text):
        if not (text.startswith("in ") or "from" in text or "later" in text):
            return None
        days = _count(m["count"]) * (7 if m["unit"].startswith("week") else 1)
        return reference + timedelta(days=days)
    return None


def _weekday_phrase(words: str, reference: date, base: date) -> date | None:
    """Weekdays without a calendar date: "next Monday", "Sunday this week", "this Sunday"."""
    wd = _WEEKDAY_RE
    forms: list[tuple[str, str]] = [
        (rf"(?:this|coming|this coming|upcoming|the coming) {wd}", "on_or_after_reference"),
        (rf"{wd} (?:of )?this week", "this_week"),
        (rf"this week {wd}", "this_week"),
        (rf"(?:next|the next|the following|following) {wd}", "next"),
        (rf"{wd} (?:of )?next week", "next_week"),
        (rf"next week {wd}", "next_week"),
        (rf"(?:the )?{wd} after next", "after_next"),
        (wd, "bare"),
    ]
    for pattern, form in forms:
        m = re.fullmatch(pattern, words)
        if m is None:
            continue
        weekday = _WEEKDAYS[m["weekday"]]
        if form == "on_or_after_reference":
            return _on_or_after(reference, weekday)
        if form == "bare":
            return _on_or_after(base, weekday)
        if form == "next":
            return _on_or_after(reference + timedelta(days=1), weekday)
        if form == "after_next":
            return _on_or_after(reference + timedelta(days=1), weekday) + timedelta(days=7)
        monday = reference - timedelta(days=reference.weekday())
        if form == "next_week":
            monday += timedelta(days=7)
        return monday + timedelta(days=weekday)
    return None


def _on_or_after(start: date, weekday: int) -> date:
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def _calendar_date(words: str, reference: date, base: date) -> date | None:
    """Month names and days of the month, with an optional weekday that must agree."""
    weekday: int | None = None
    text = words
    if m := re.match(rf"{_WEEKDAY_RE}\b(?: the\b)?\s*", text):
        rest = text[m.end() :]
        if rest:
            had_the = m[0].rstrip().endswith(" the")
            weekday, text = _WEEKDAYS[m["weekday"]], ("the " + rest if had_the else rest)
    if (m := re.search(rf"\s*\b{_WEEKDAY_RE}$", text)) and text[: m.start()]:
        weekday, text = _WEEKDAYS[m["weekday"]], text[: m.start()]
    found = _month_day(text.strip(), reference, base)
    if found is None:
        return None
    if weekday is not None and found.weekday() != weekday:
        name = calendar.day_name[weekday]
        raise DateParseError(f"{found.isoformat()} is a {calendar.day_name[found.weekday()]},"
                             f" not a {name}: {words!r}")  # fmt: skip
    return found


def _month_day(text: str, reference: date, base: date) -> date | None:
    day_month = rf"(?:the )?{_DAY_RE} (?:of |day of )?{_MONTH_RE}(?: (?:of )?{_YEAR_RE})?"
    month_day = rf"{_MONTH_RE} (?:the )?{_DAY_RE}(?: (?:of )?{_YEAR_RE})?"
    for pattern in (day_month, month_day):
        if m := re.fullmatch(pattern, text):
            month, day = _MONTHS[m["month"]], _day_number(m["day"])
            if m["year"]:
                return _make(int(m["year"]), month, day, text)
            return _next_month_day(month, day, base, text)
    relative_month = rf"(?:the )?{_DAY_RE} (?:of |day of )?(?P<which>this|next|the next) month"
    if m := re.fullmatch(relative_month, text):
        year, month = reference.year, reference.month
        if m["which"] != "this":
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return _make(year, month, _day_number(m["day"]), text)
    # A bare day needs an ordinal or "the": a lone "14" is as likely a count as a date.
    if m := re.fullmatch(rf"the {_DAY_RE}|(?P<ord>\d{{1,2}}(?:st|nd|rd|th)|{_ORD_RE})", text):
        token = m["day"] or m["ord"]
        return _next_day(_day_number(token), base, text)
    if _VAGUE.search(text) or re.fullmatch(_MONTH_RE + rf"(?: {_YEAR_RE})?", text):
        raise DateParseError(f"too vague to be a date: {text!r}")
    return None


# --- times --------------------------------------------------------------------------------------

_PERIODS = {
    "am": "am",
    "pm": "pm",
    "morning": "morning",
    "in the morning": "morning",
    "this morning": "morning",
    "afternoon": "afternoon",
    "in the afternoon": "afternoon",
    "this afternoon": "afternoon",
    "evening": "evening",
    "in the evening": "evening",
    "this evening": "evening",
    "night": "night",
    "at night": "night",
    "in the night": "night",
    "tonight": "night",
}
_PERIOD_RE = rf"(?P<period>{_alternation(_PERIODS)})"
_PREFIX_PERIOD_RE = r"(?P<pre>morning|afternoon|evening|night|tonight)"
_HOUR_WORD_RE = _alternation([*_UNITS[1:13], *(str(n) for n in range(24, -1, -1))])
_MINUTE_WORD_RE = _alternation(w for w, n in _CARDINALS.items() if 10 <= n <= 59)
_LEADING_TIME_WORDS = re.compile(r"^(?:(?:at|around|about|by|from|approximately|approx)\s+)+")


def resolve_time(text: str) -> time:
    """Resolve a time of day as the user wrote it; raises `TimeParseError` if it cannot.

    A time followed by where or which day it is ("10:30 in KL", "morning 11 of Friday next
    week") reads as the time: a span copied a few words too long still says one time.
    """
    if not isinstance(text, str):
        raise TimeParseError(f"not text: {type(text).__name__}")
    words = _clean_time(text)
    if not words:
        raise TimeParseError(f"no time in {text[:MAX_INPUT]!r}")
    try:
        return _resolve_clean_time(words, text)
    except TimeParseError:
        head = _time_before_place(words)
        if head is None:
            raise
        return _resolve_clean_time(head, text)


# What may follow a time without changing it: a place or a day, after a preposition, with no
# figure and no word of the clock ("at JFK", "of Friday next week"; not "or 9", "in the evening").
_PLACE_PREPOSITIONS = frozenset({"in", "at", "on", "of", "for", "from", "near", "by"})
_CLOCK_WORDS = frozenset({"am", "pm", "noon", "midnight", "oclock", "morning", "afternoon",
                          "evening", "night", "tonight", "or", "and", "to", "till",
                          "until"})  # fmt: skip


def _time_before_place(words: str) -> str | None:
    """The words before a trailing place or day ("10:30" of "10:30 in kl"), if there is one."""
    parts = words.split()
    for cut in range(1, min(len(parts), 8)):
        tail = parts[cut:]
        if tail[0] in _PLACE_PREPOSITIONS and not any(
            w in _CLOCK_WORDS or any(c.isdigit() for c in w) for w in tail
        ):
            return " ".join(parts[:cut])
    return None


def _resolve_clean_time(words: str, text: str) -> time:
    if words in ("noon", "midday", "12 noon", "twelve noon", "noon time", "noontime"):
        return time(12, 0)
    if words in ("midnight", "12 midnight", "twelve midnight"):
        return time(0, 0)
    if words in _PERIODS or words in ("morning", "afternoon", "evening", "night"):
        raise TimeParseError(f"a part of the day, not a time: {text[:MAX_INPUT]!r}")
    period = None
    if m := re.fullmatch(rf"{_PREFIX_PERIOD_RE} (?P<rest>.+)", words):
        period, words = _PERIODS[m["pre"]], m["rest"]
        # "afternoon 2 pm" says the half of the day twice; "afternoon 2 am" contradicts itself.
        again = re.fullmatch(rf"(?P<rest>.+?) ?\b{_PERIOD_RE}", words)
        if again and _same_half(period, _PERIODS[again["period"]]):
            words = again["rest"]
    elif m := re.fullmatch(rf"(?P<rest>.+?) ?\b{_PERIOD_RE}", words):
        period, words = _PERIODS[m["period"]], m["rest"]
    hour, minute, explicit_clock = _clock(words, text)
    return _apply_period(hour, minute, period, explicit_clock, text)


def _same_half(first: str, second: str) -> bool:
    halves = ({"am", "morning"}, {"pm", "afternoon", "evening"})
    return any(first in half and second in half for half in halves)


def _clean_time(text: str) -> str:
    lowered = fold(text).strip()
    lowered = re.sub(r"\b([ap])\.? ?m\b\.?", r"\1m", lowered)  # "p.m.", "p m" -> "pm"
    lowered = re.sub(r"o\W?\s?clock", "oclock", lowered)  # o'clock, o"clock, o clock
    lowered = re.sub(r"(\d)\s*(am|pm)\b", r"\1 \2", lowered)  # "5pm" -> "5 pm"
    lowered = re.sub(r"(\d)[.h](\d\d)\b", r"\1:\2", lowered)  # "5.30", "17h30" -> "5:30"
    lowered = re.sub(r"[^0-9a-z:]+", " ", lowered).strip()
    return _LEADING_TIME_WORDS.sub("", re.sub(r"\s+", " ", lowered)).strip()


def _clock(words: str, original: str) -> tuple[int, int, bool]:
    """(hour, minute, written as H:MM) from the part of the text without a period."""
    words = _LEADING_TIME_WORDS.sub("", re.sub(r" ?\boclock\b", "", words)).strip()
    if m := re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", words):
        return int(m[1]), int(m[2]), True
    relative = (
        rf"(?P<amount>half|quarter|a quarter|{_MINUTE_WORD_RE}|\d{{1,2}})(?: minutes?)?"
        rf" (?P<dir>past|after|to|till|til|before|of) (?P<hour>{_HOUR_WORD_RE})"
    )
    if m := re.fullmatch(relative, words):
        amount = {"half": 30, "quarter": 15, "a quarter": 15}.get(m["amount"])
        minutes = amount if amount is not None else _minute_value(m["amount"], original)
        hour = _hour_value(m["hour"], original)
        if m["dir"] in ("past", "after"):
            return hour, minutes, False
        if minutes == 30:
            raise TimeParseError(f"cannot read {original[:MAX_INPUT]!r} as a time")
        # "quarter to 1" is 12:45; the period then applies to 12 ("in the afternoon").
        return (hour - 1) % 24 if hour != 1 else 12, 60 - minutes, False
    spoken = rf"(?P<hour>{_HOUR_WORD_RE})(?: (?P<minute>oh \w+|{_MINUTE_WORD_RE}|\d{{2}}))?"
    if m := re.fullmatch(spoken, words):
        hour = _hour_value(m["hour"], original)
        minute = _minute_value(m["minute"], original) if m["minute"] else 0
        return hour, minute, False
    raise TimeParseError(f"cannot read {original[:MAX_INPUT]!r} as a time")


def _hour_value(token: str, original: str) -> int:
    value = int(token) if token.isdigit() else _CARDINALS.get(token, -1)
    if not 0 <= value <= 24:
        raise TimeParseError(f"no such hour in {original[:MAX_INPUT]!r}")
    return value


def _minute_value(token: str, original: str) -> int:
    if token.startswith("oh "):
        token = token[3:]
    value = int(token) if token.isdigit() else _CARDINALS.get(token, -1)
    if not 0 <= value <= 59:
        raise TimeParseError(f"no such minute in {original[:MAX_INPUT]!r}")
    return value


def _apply_period(
    hour: int, minute: int, period: str | None, explicit_clock: bool, original: str
) -> time:
    """Turn a 12-hour reading into 24 hours; reject what stays ambiguous or impossible."""
    if hour == 24 and minute == 0 and period is None:
        hour = 0
    if period is None:
        if not explicit_clock and 1 <= hour <= 12:
            raise TimeParseError(f"am or pm? {original[:MAX_INPUT]!r}")
        return _make_time(hour, minute, original)
    if hour > 12:
        # "17:30 pm" says the same thing twice; "17 in the morning" contradicts itself.
        if period in ("pm", "afternoon", "evening", "night"):
            return _make_time(hour, minute, original)
        raise TimeParseError(f"{hour} is not a {period} hour: {original[:MAX_INPUT]!r}")
    if period in ("am", "morning"):
        return _make_time(0 if hour == 12 else hour, minute, original)
    if period in ("pm", "afternoon"):
        return _make_time(hour if hour == 12 else hour + 12, minute, original)
    if period == "evening":
        if hour in (0, 12):
            raise TimeParseError(f"not an evening hour: {original[:MAX_INPUT]!r}")
        return _make_time(hour + 12, minute, original)
    # night: "8 at night" is 20:00, "2 at night" is 02:00, "12 at night" is midnight.
    if hour == 12:
        return _make_time(0, minute, original)
    return _make_time(hour + 12 if hour >= 6 else hour, minute, original)


def _make_time(hour: int, minute: int, original: str) -> time:
    try:
        return time(hour, minute)
    except ValueError:
        raise TimeParseError(f"no such time: {original[:MAX_INPUT]!r}") from None
