"""How travellers write the values of a request: places, dates, counts, money, countries.

Each writer takes a random generator and what the value *is* (a catalog city, a date, a
count) and returns how one traveller might write it. Dates are written relative to the
request's own "today" and checked by resolving them back (`skiff_travel.dates`), so a written
date always means the date it was drawn for. Used by `synthetic` to build training requests;
nothing here is a prompt or a test input.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from skiff_travel.catalog import City, default_catalog
from skiff_travel.dates import DateParseError, resolve_date

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def count_word(rng: random.Random, n: int) -> str:
    """A count as a figure or, for small ones, a word."""
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) and rng.random() < 0.4 else str(n)


# --- places -----------------------------------------------------------------------------------


def cities() -> tuple[City, ...]:
    """The catalog's primary cities with an airport of their own (so flights reach them)."""
    return tuple(c for c in default_catalog().cities if c.primary and c.airports)


def airport_nicknames() -> dict[str, list[str]]:
    """Everyday airport names by IATA code ("ORD": ["O'Hare"])."""
    names: dict[str, list[str]] = {}
    data = default_catalog()
    for nickname in ("Heathrow", "Gatwick", "O'Hare", "Midway", "LaGuardia", "Kennedy",
                     "Newark", "Dulles", "Reagan National", "Logan", "Sea-Tac", "Love Field",
                     "Charles de Gaulle", "Orly", "Fiumicino", "Schiphol", "Barajas", "Pearson",
                     "Narita", "Haneda", "Incheon", "Changi", "Malpensa", "El Prat"):  # fmt: skip
        found = data.by_airport_name(nickname)
        if found is not None:
            names.setdefault(found[0], []).append(nickname)
    return names


def place(rng: random.Random, city: City, *, airports: bool) -> str:
    """A city as written: its name mostly; an alias, a qualified name, or (for flights) an
    airport code or name sometimes."""
    roll = rng.random()
    aliases = [a for a in city.aliases if len(a) > 2 and not a.isupper()]
    if airports and roll < 0.14:
        return rng.choice(city.airports)
    if airports and roll < 0.22:
        nicknames = airport_nicknames().get(rng.choice(city.airports))
        if nicknames:
            return rng.choice(nicknames)
        return f"{city.name} airport"
    if roll < 0.30 and aliases:
        return rng.choice(aliases)
    if roll < 0.36 and city.region and city.country in ("US", "CA"):
        return f"{city.name}, {city.region}"
    return city.name


# --- dates ------------------------------------------------------------------------------------


def future_date(rng: random.Random, today: date, *, soon: bool = False) -> date:
    return today + timedelta(days=rng.randint(1, 20 if soon else 240))


def _absolute(rng: random.Random, value: date, today: date) -> str:
    month, day = MONTHS[value.month - 1], value.day
    year = f" {value.year}" if rng.random() < 0.25 else ""
    forms = [
        f"{month} {day}{year}", f"{month} {ordinal(day)}", f"{day} {month}{year}",
        f"the {ordinal(day)} of {month}", f"{ordinal(day)} {month}",
        f"{MONTHS_SHORT[value.month - 1]} {day}", f"{day} {MONTHS_SHORT[value.month - 1]}",
        f"{month} {day}, {value.year}", f"{value.month}/{day}/{value.year}",
        f"{day:02d}.{value.month:02d}.{value.year}", value.isoformat(),
        f"{WEEKDAYS[value.weekday()]}, {month} {ordinal(day)}",
    ]  # fmt: skip
    weights = [6, 6, 5, 3, 3, 2, 2, 3, 1, 1, 1, 1]
    return rng.choices(forms, weights)[0]


def _relative(rng: random.Random, value: date, today: date) -> str | None:
    days = (value - today).days
    if days == 1:
        return "tomorrow"
    if days == 2 and rng.random() < 0.5:
        return "the day after tomorrow"
    if 1 <= days <= 7 and rng.random() < 0.6:
        return f"this {WEEKDAYS[value.weekday()]}" if days < 7 else None
    if 2 <= days <= 7:
        return f"next {WEEKDAYS[value.weekday()]}"
    if days in (7, 14, 21) and rng.random() < 0.5:
        return f"in {count_word(rng, days // 7)} weeks" if days > 7 else "in a week"
    if 3 <= days <= 12:
        return f"in {count_word(rng, days)} days"
    return None


def write_date(rng: random.Random, value: date, today: date, after: date | None = None) -> str:
    """A phrase that resolves to `value` (given `today`, and `after` for a second date)."""
    candidates = []
    if after is not None:  # a second date is said against the first, never against today
        if rng.random() < 0.45:
            candidates += [f"the {ordinal(value.day)}", ordinal(value.day)]
    elif rng.random() < 0.3:
        relative = _relative(rng, value, today)
        if relative:
            candidates.append(relative)
    candidates.append(_absolute(rng, value, today))
    for phrase in candidates:
        try:
            if resolve_date(phrase, today, after=after) == value:
                return phrase
        except DateParseError:
            continue
    return value.isoformat()


def write_length(rng: random.Random, days: int, unit: str = "days") -> str:
    """A length of time ("5 days", "two weeks", "a fortnight")."""
    if unit == "days" and days in (7, 14) and rng.random() < 0.5:
        if days == 14 and rng.random() < 0.4:
            return "a fortnight"
        return "a week" if days == 7 else "two weeks"
    return f"{count_word(rng, days)} {unit if days != 1 else unit[:-1]}"


def _part_of_day(hour: int) -> str:
    return "morning" if hour < 12 else "afternoon" if hour < 18 else "evening"


def write_time(rng: random.Random) -> tuple[str, str]:
    """A pickup time as written, and its HH:MM."""
    hour = rng.randint(6, 21)
    minute = rng.choice((0, 0, 0, 15, 30, 30, 45))
    twelve = hour - 12 if hour > 12 else hour
    period = "am" if hour < 12 else "pm"
    forms = [f"{twelve}:{minute:02d} {period}", f"{twelve}{period}" if minute == 0 else None,
             f"{hour:02d}:{minute:02d}", f"{twelve} {period}" if minute == 0 else None,
             f"half past {twelve} in the {'morning' if hour < 12 else 'afternoon'}"
             if minute == 30 and hour < 18 else None,
             "noon" if (hour, minute) == (12, 0) else None,
             f"{twelve} in the {_part_of_day(hour)}" if minute == 0 else None,
             f"{_part_of_day(hour)} {twelve}:{minute:02d}" if hour != 12 else None,
             f"{twelve} o'clock in the {_part_of_day(hour)}" if minute == 0 else None,
             f"{twelve}:{minute:02d}{period}"]  # fmt: skip
    written = rng.choice([f for f in forms if f])
    return written, f"{hour:02d}:{minute:02d}"


# --- money and countries -----------------------------------------------------------------------


def write_money(rng: random.Random) -> tuple[str, float, str]:
    """An amount as written, its value, and its currency: "$6,400", "1.200 €", "EUR 950"."""
    amount = rng.choice((rng.randint(3, 120) * 100, rng.randint(300, 15000)))
    grouped = f"{amount:,}"
    european = grouped.replace(",", ".")
    spaced = grouped.replace(",", " ")
    swiss = grouped.replace(",", "'")
    thousands = f"{amount / 1000:g}k" if amount % 100 == 0 else grouped
    currency = rng.choices(("USD", "EUR", "GBP", "CAD", "AUD", "CHF"), (6, 3, 2, 1, 1, 1))[0]
    forms = {
        "USD": [f"${grouped}", f"{grouped} USD", f"USD {grouped}", f"{grouped} dollars",
                f"${amount}", f"${grouped}.00", f"${thousands}", f"{thousands} USD"],
        "EUR": [f"{european} €", f"€{grouped}", f"{grouped} euros", f"EUR {european}",
                f"{amount} EUR", f"{european},00 €", f"{spaced} €", f"€{thousands}",
                f"{european} euros"],
        "GBP": [f"£{grouped}", f"{grouped} pounds", f"GBP {grouped}", f"£{thousands}",
                f"£{grouped}.00"],
        "CAD": [f"CAD {grouped}", f"C${grouped}", f"{grouped} Canadian dollars"],
        "AUD": [f"AUD {grouped}", f"A${grouped}", f"{grouped} Australian dollars"],
        "CHF": [f"CHF {swiss}", f"{swiss} CHF", f"{grouped} Swiss francs", f"CHF {grouped}.-"],
    }  # fmt: skip
    return rng.choice(forms[currency]), float(amount), currency


# Per country: how a traveller names it, and what they call themselves ("I'm Canadian").
COUNTRIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "US": (("the United States", "the US", "the USA", "US"), ("American",)),
    "CA": (("Canada", "CA"), ("Canadian",)),
    "GB": (("the UK", "the United Kingdom", "England", "UK"), ("British",)),
    "DE": (("Germany", "DE"), ("German",)),
    "FR": (("France", "FR"), ("French",)),
    "ES": (("Spain",), ("Spanish",)),
    "IT": (("Italy",), ("Italian",)),
    "NL": (("the Netherlands", "Holland"), ("Dutch",)),
    "IE": (("Ireland",), ("Irish",)),
    "AU": (("Australia", "AU"), ("Australian",)),
    "MX": (("Mexico",), ("Mexican",)),
    "JP": (("Japan",), ("Japanese",)),
    "IN": (("India",), ("Indian",)),
    "BR": (("Brazil",), ("Brazilian",)),
    "CH": (("Switzerland",), ("Swiss",)),
    "SE": (("Sweden",), ("Swedish",)),
    "NZ": (("New Zealand",), ("New Zealander",)),
}
