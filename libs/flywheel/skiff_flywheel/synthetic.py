"""Generated training requests: the phrasings SGD lacks, and insurance, which SGD has none of.

SGD's requests are crowd paraphrases of one dialogue simulator: US cities, March 2019, and a
few dozen sentence shapes. A traveller writing to another service uses airport codes and
names ("JFK", "O'Hare"), city abbreviations, years and numeric dates, verbless requests
("Airfare for two, Toronto to Vancouver"), money in several formats, and several services in
one message. This module writes such requests, clause by clause, with the draft each one
teaches (values exactly as written, null for what is not said), in the SGD record format
(`gold_norm` per domain), so `sgd.import_sgd` reads them like the real data.

Every request is checked before it is kept, with the worker's own code: each draft value must
pass the evidence check (`unsupported_fields`), stand unchanged through date and place
completion and the flight role check, and ground (`ground_draft`) against the request's
"today"; the grounded request gives the gold's `canonical`. A request that fails any check
is redrawn, so a generated label never disagrees with what the pipeline would accept.

Deterministic: the same seed and count give the same records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from skiff_contracts.domains import DOMAINS, DRAFTS, Domain
from skiff_extraction.evidence import (
    completed_dates,
    completed_places,
    reassigned_roles,
    unsupported_fields,
)
from skiff_extraction.scoring import DERIVED_FIELDS
from skiff_flywheel.synthetic_values import (
    COUNTRIES,
    cities,
    count_word,
    future_date,
    place,
    write_date,
    write_length,
    write_money,
    write_time,
)
from skiff_travel.catalog import City
from skiff_travel.rules import Rejection, ground_draft

SOURCE = "generated"
AIRLINES = ("Delta", "United", "American Airlines", "Southwest", "JetBlue", "Alaska Airlines",
            "Air Canada", "Lufthansa", "British Airways", "Air France", "KLM", "Emirates",
            "Qantas", "Iberia", "Aer Lingus", "WestJet", "Spirit", "Frontier")  # fmt: skip
HOTELS = ("Hilton Garden Inn", "Marriott Marquis", "Holiday Inn Express", "Hyatt Regency",
          "Best Western Plus", "Four Seasons", "Ace Hotel", "Hampton Inn", "The Ritz-Carlton",
          "Sheraton Grand", "Courtyard by Marriott", "Motel 6", "The Westin", "Radisson Blu",
          "Novotel", "Ibis Styles", "Fairmont", "Kimpton")  # fmt: skip
CAR_NAMES = ("Toyota Corolla", "Honda Civic", "Ford Mustang", "Chevrolet Malibu",
             "Tesla Model 3", "Jeep Wrangler", "Nissan Altima", "Kia Soul", "VW Golf",
             "Toyota RAV4", "Ford Explorer", "Chrysler Pacifica", "BMW 3 Series")  # fmt: skip
SEATING = {"economy": ("economy", "coach", "economy class"), "premium_economy":
           ("premium economy",), "business": ("business class", "business"),
           "first": ("first class",)}  # fmt: skip
CAR_TYPES = {"compact": ("compact", "compact car", "small car", "small one"),
             "suv": ("SUV", "suv"), "sedan": ("sedan",), "economy": ("economy car",),
             "minivan": ("minivan", "van"), "luxury": ("luxury car",),
             "full_size": ("full-size car", "full size car", "large car", "big car",
                           "spacious car"),
             "hatchback": ("hatchback",),
             "standard": ("standard car", "intermediate car", "mid-size car", "midsize car",
                          "medium-sized car")}  # fmt: skip
COVERAGE = ("basic", "standard", "premium")


@dataclass
class Clause:
    """One domain's part of a request: its words and the draft values they teach."""

    domain: Domain
    text: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trip:
    """What the whole request is about: its today, places and dates (clauses share them)."""

    today: date
    origin: City
    destination: City
    start: date
    end: date | None
    travellers: int
    # How the shared values were written by the clause that said them first.
    said: dict[str, str] = field(default_factory=dict)


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def _people(rng: random.Random, n: int, nouns: tuple[str, ...]) -> tuple[str, int]:
    """A party size as written ("2 adults", "the two of us", "a family of four")."""
    if n == 1 and rng.random() < 0.4:
        return _pick(rng, "just myself", "for myself", "one person", "a single traveller"), 1
    if n == 2 and rng.random() < 0.3:
        return _pick(rng, "the two of us", "both of us", "a couple"), 2
    if n >= 3 and rng.random() < 0.25:
        return f"a family of {count_word(rng, n)}", n
    noun = rng.choice(nouns)
    if n == 1:
        noun = "person" if noun == "people" else noun.removesuffix("s")
    return f"{count_word(rng, n)} {noun}", n


# --- clauses per domain -----------------------------------------------------------------------


def flight_clause(rng: random.Random, trip: Trip, *, first: bool) -> Clause:
    origin = place(rng, trip.origin, airports=True)
    destination = place(rng, trip.destination, airports=True)
    departure = write_date(rng, trip.start, trip.today)
    values: dict[str, Any] = {"origin": origin, "destination": destination,
                              "departure_date": departure}  # fmt: skip
    opener = _pick(rng, "Book me a flight", "I need a flight", "Find me flights",
                   "I'd like to fly", "Get me a plane ticket", "Looking for airfare",
                   "Please reserve a flight", "Need to fly", "Can you find a flight",
                   "Flights", "Airfare", "A flight", "I have to get", "Fly me")  # fmt: skip
    if not first:
        opener = _pick(rng, "also a flight", "and a flight", "plus flights", "I also need to fly")
    route = rng.choice([f"from {origin} to {destination}", f"{origin} to {destination}",
                        f"to {destination} from {origin}", f"out of {origin} into {destination}",
                        f"from {origin} into {destination}", f"{origin} - {destination}",
                        f"leaving {origin} for {destination}"])  # fmt: skip
    when = rng.choice([f"on {departure}", departure, f"leaving {departure}",
                       f"departing {departure}", f"for {departure}"])  # fmt: skip
    parts = [f"{opener} {route} {when}"]
    if trip.end is not None:
        ret = write_date(rng, trip.end, trip.today, after=trip.start)
        values["return_date"] = ret
        parts.append(rng.choice([f"returning {ret}", f"back on {ret}", f"coming back {ret}",
                                 f"return {ret}", f"flying home {ret}",
                                 f"with the return on {ret}"]))  # fmt: skip
    elif rng.random() < 0.5:
        parts[0] = (
            parts[0].replace(opener, f"{opener} one way", 1)
            if rng.random() < 0.5
            else (parts[0] + ", one-way")
        )
    if rng.random() < 0.7:
        written, n = _people(rng, trip.travellers, ("adults", "passengers", "people", "tickets"))
        values["passengers"] = n
        parts.append(rng.choice([f"for {written}", written]))
    if rng.random() < 0.35:
        seat = rng.choice(list(SEATING))
        values["seating_class"] = seat
        parts.append(rng.choice([f"in {rng.choice(SEATING[seat])}",
                                 f"{rng.choice(SEATING[seat])} please"]))  # fmt: skip
    if rng.random() < 0.2:
        airline = rng.choice(AIRLINES)
        values["airline"] = airline
        parts.append(rng.choice([f"on {airline}", f"with {airline}", f"{airline} if possible"]))
    if rng.random() < 0.2:
        values["nonstop"] = True
        parts.append(_pick(rng, "nonstop", "direct flights only", "non-stop please"))
    if rng.random() < 0.1:
        values["refundable"] = True
        parts.append(_pick(rng, "refundable fare", "it must be refundable"))
    trip.said |= {
        "destination": destination,
        "start": departure,
        **({"end": values["return_date"]} if "return_date" in values else {}),
    }
    return Clause("flights", _join(rng, parts), values)


def hotel_clause(rng: random.Random, trip: Trip, *, first: bool) -> Clause:
    values: dict[str, Any] = {}
    opener = _pick(rng, "Book a hotel", "I need a hotel room", "Find me a hotel",
                   "Reserve a room", "I'm looking for a place to stay", "Hotel",
                   "Accommodation", "A hotel", "Get me a room")  # fmt: skip
    if not first:
        opener = _pick(rng, "also a hotel", "and a hotel", "plus a room", "I also need a hotel")
    if "destination" in trip.said and rng.random() < 0.6:
        values["location"] = trip.said["destination"]
        there = "there" if rng.random() < 0.5 else f"in {trip.said['destination']}"
        parts = [f"{opener} {there}"]
    else:
        location = place(rng, trip.destination, airports=False)
        values["location"] = location
        parts = [
            rng.choice(
                [
                    f"{opener} in {location}",
                    f"{opener} in downtown {location}"
                    if rng.random() < 0.2
                    else f"{location} {opener.lower()}",
                ]
            )
        ]
        if parts[0].startswith(f"{location} ") and "downtown" not in parts[0]:
            parts = [f"{opener} in {location}"]
    if "start" in trip.said and "end" in trip.said and rng.random() < 0.6:
        values["check_in_date"], values["check_out_date"] = trip.said["start"], trip.said["end"]
        parts.append(_pick(rng, "for those nights", "for the same dates", "for the whole stay"))
    else:
        check_in = write_date(rng, trip.start, trip.today)
        values["check_in_date"] = check_in
        nights = (trip.end - trip.start).days if trip.end else rng.randint(1, 9)
        if rng.random() < 0.5 and trip.end:
            out = write_date(rng, trip.end, trip.today, after=trip.start)
            values["check_out_date"] = out
            parts.append(
                rng.choice(
                    [
                        f"from {check_in} to {out}",
                        f"checking in {check_in}, checking out {out}",
                        f"{check_in} through {out}",
                    ]
                )
            )
        else:
            values["nights"] = nights
            written = count_word(rng, nights)
            parts.append(rng.choice([f"from {check_in} for {written} nights",
                                     f"for {written} nights starting {check_in}",
                                     f"check-in {check_in}, {written} nights"]))  # fmt: skip
    if rng.random() < 0.3:
        rooms = rng.randint(1, 3)
        values["rooms"] = rooms
        parts.append(f"{count_word(rng, rooms)} room{'s' if rooms > 1 else ''}")
    if rng.random() < 0.35:
        written, n = _people(rng, trip.travellers, ("guests", "adults", "people"))
        values["guests"] = n
        parts.append(f"for {written}")
    if rng.random() < 0.3:
        stars = rng.randint(2, 5)
        values["star_rating"] = stars
        parts.append(rng.choice([f"{count_word(rng, stars)}-star", f"at least {stars} stars",
                                 f"{stars} star or better"]))  # fmt: skip
    if rng.random() < 0.1:
        rating = rng.choice((3.5, 4.0, 4.2, 4.5))
        values["review_rating"] = rating
        parts.append(f"rated {rating:g} or higher")
    if rng.random() < 0.12:
        name = rng.choice(HOTELS)
        values["hotel_name"] = name
        parts.append(f"at the {name}" if not name.startswith("The ") else f"at {name}")
    if rng.random() < 0.15:
        values["wifi"] = True
        parts.append(_pick(rng, "with wifi", "with free Wi-Fi", "good internet needed"))
    if rng.random() < 0.1:
        values["pets_allowed"] = True
        parts.append(_pick(rng, "pet-friendly", "that allows dogs", "I'm bringing my dog"))
    return Clause("hotels", _join(rng, parts), values)


def car_clause(rng: random.Random, trip: Trip, *, first: bool) -> Clause:
    values: dict[str, Any] = {}
    opener = _pick(
        rng,
        "Rent me a car",
        "I need a rental car",
        "Car hire",
        "Book a car",
        "I'd like to hire a car",
        "Rental car",
        "I need wheels",
        "Reserve a car",
    )
    if not first:
        opener = _pick(rng, "also a rental car", "and a car", "plus a car", "I'll also need a car")
    airport_pickup = rng.random() < 0.35
    city = trip.destination
    if airport_pickup:
        location = rng.choice([f"the {city.name} airport", f"{city.iata}", "the airport",
                               f"{city.name} airport"])  # fmt: skip
        values["pickup_location"] = location
        if location == "the airport" or "destination" not in trip.said:
            written_city = trip.said.get("destination") or place(rng, city, airports=False)
            if location == "the airport":
                values["pickup_city"] = written_city
                parts = [f"{opener} in {written_city}, picking it up at the airport"]
            else:
                parts = [f"{opener} at {location}"]
        else:
            parts = [f"{opener} at {location}"]
    else:
        said = trip.said.get("destination") if rng.random() < 0.5 else None
        written_city = said or place(rng, city, airports=False)
        values["pickup_city"] = written_city
        parts = [rng.choice([f"{opener} in {written_city}", f"{opener}, pick-up at {written_city}",
                             f"{opener}, collecting it in {written_city}",
                             f"{opener} to pick up at {written_city}"])]  # fmt: skip
        if rng.random() < 0.25:
            location = _pick(
                rng, "Union Station", "the train station", "downtown", "the central station"
            )
            values["pickup_location"] = location
            parts.append(f"pickup {location}" if location == "downtown" else f"from {location}")
    pickup = write_date(rng, trip.start, trip.today)
    values["pickup_date"] = pickup
    when = rng.choice([f"on {pickup}", f"from {pickup}", f"picking up {pickup}", pickup])
    if rng.random() < 0.4:
        written_time, _ = write_time(rng)
        values["pickup_time"] = written_time
        when += rng.choice([f" at {written_time}", f" around {written_time}"])
    parts.append(when)
    if trip.end is not None and rng.random() < 0.7:
        if rng.random() < 0.25:
            days = (trip.end - trip.start).days
            length = write_length(rng, days)
            values["dropoff_date"] = length
            parts.append(f"for {length}")
        else:
            dropoff = write_date(rng, trip.end, trip.today, after=trip.start)
            values["dropoff_date"] = dropoff
            parts.append(rng.choice([f"returning it {dropoff}", f"drop-off {dropoff}",
                                     f"until {dropoff}", f"back on {dropoff}"]))  # fmt: skip
    if rng.random() < 0.45:
        kind = rng.choice(list(CAR_TYPES))
        values["car_type"] = kind
        written = rng.choice(CAR_TYPES[kind])
        one = f"{'an' if written[0] in 'aeiou' else 'a'} {written}"
        parts.append(rng.choice([one, f"{written} if possible", f"make it {one}",
                                 f"it should be {one}", f"preferably {one}"]))  # fmt: skip
    elif rng.random() < 0.15:
        name = rng.choice(CAR_NAMES)
        values["car_name"] = name
        parts.append(f"something like a {name}")
    return Clause("cars", _join(rng, parts), values)


def _insured(rng: random.Random, n: int) -> str:
    """The people a policy covers, as a traveller writes them ("2 adults", "my wife and I",
    "the three of us", "just me")."""
    if n == 1 and rng.random() < 0.5:
        return _pick(rng, "just me", "only me", "just myself", "one traveller",
                     "one person", "one traveler", "a single traveller", "a solo traveller",
                     "one adult")  # fmt: skip
    if n == 2 and rng.random() < 0.4:
        return _pick(rng, "my wife and I", "my husband and I", "me and my partner",
                     "a couple", "my partner and I", "the two of us", "both of us",
                     "me and my wife")  # fmt: skip
    count = count_word(rng, n)
    if rng.random() < 0.12:
        return count  # "insurance for 2", "insure 3"
    if n == 1:
        return _pick(rng, f"{count} traveller", f"{count} traveler", f"{count} adult",
                     f"{count} person", f"{count} passenger")  # fmt: skip
    return _pick(rng, f"{count} travellers", f"{count} travelers", f"{count} people",
                 f"{count} adults", f"{count} passengers", f"{count} persons", f"{count} ppl",
                 f"the {count} of us", f"{count} of us", f"a party of {count}",
                 f"a group of {count}", f"a family of {count}")  # fmt: skip


def _residence(rng: random.Random) -> tuple[str, str]:
    """Where the insured live, as said and as the value, by country name, code or demonym
    ("UK residents", "I'm Dutch")."""
    names, demonyms = COUNTRIES[rng.choice(list(COUNTRIES))]
    if rng.random() < 0.35:
        demonym = rng.choice(demonyms)
        frame = rng.choice(["we are {}", "I'm {}", "{} residents", "{} citizens",
                            "{} passport", "we're {}", "all {}", "{} passport holders",
                            "{} nationals", "both {}"])  # fmt: skip
        return frame.format(demonym), demonym
    name = rng.choice(names)
    frame = rng.choice(["I live in {}", "residents of {}", "based in {}", "home country {}",
                        "living in {}", "citizens of {}", "resident in {}", "we live in {}",
                        "from {}", "residence: {}", "{}-based", "{} residents",
                        "we're from {}", "nationality: {}"])  # fmt: skip
    return frame.format(name), name


def _trip_length(rng: random.Random, days: int) -> str:
    """A trip named by its length ("10-day trip", "two-week holiday", "5 day vacation")."""
    count, unit = (count_word(rng, days // 7), "week") if days in (7, 14, 21) else (
        count_word(rng, days), "day")  # fmt: skip
    noun = _pick(rng, "trip", "trip", "holiday", "vacation", "stay")
    return f"{count}{rng.choice(['-', ' '])}{unit} {noun}"


def _policy_dates(rng: random.Random, trip: Trip, values: dict[str, Any]) -> str | None:
    """The policy's dates: the trip's as another clause said them, or its own (an end date,
    a length, or no end at all)."""
    if "start" in trip.said:
        if rng.random() >= 0.35:
            return None
        values["trip_start"] = trip.said["start"]
        if "end" in trip.said:
            values["trip_end"] = trip.said["end"]
        return _pick(rng, "for the whole trip", "covering those dates", "for those dates",
                     "for the same dates", "for the trip", "for the same period")  # fmt: skip
    if rng.random() >= 0.85:
        return None
    start = write_date(rng, trip.start, trip.today)
    values["trip_start"] = start
    if rng.random() < 0.15:
        return rng.choice([f"starting {start}", f"leaving {start}", f"for my trip on {start}",
                           f"departing {start}", f"the trip starts {start}"])  # fmt: skip
    end = trip.end or trip.start + timedelta(days=rng.randint(2, 20))
    if rng.random() < 0.3:
        days = (end - trip.start).days
        if rng.random() < 0.4:  # "a 10-day trip from May 3"
            trip_length = _trip_length(rng, days)
            values["trip_end"] = trip_length
            return rng.choice([f"a {trip_length} starting {start}",
                               f"for a {trip_length} from {start}",
                               f"my {trip_length} beginning {start}",
                               f"a {trip_length}, leaving {start}"])  # fmt: skip
        length = write_length(rng, days)
        values["trip_end"] = length
        return rng.choice([f"starting {start} for {length}", f"for {length} from {start}",
                           f"{start}, back {length} later", f"{length} starting {start}",
                           f"leaving {start} and returning {length} later"])  # fmt: skip
    finish = write_date(rng, end, trip.today, after=trip.start)
    values["trip_end"] = finish
    return rng.choice([f"from {start} to {finish}", f"{start} until {finish}",
                       f"travelling {start}, back {finish}", f"{start} - {finish}",
                       f"{start} through {finish}", f"away {start} to {finish}",
                       f"leaving {start}, returning {finish}"])  # fmt: skip


def insurance_clause(rng: random.Random, trip: Trip, *, first: bool) -> Clause:
    values: dict[str, Any] = {}
    coverage = rng.choice(COVERAGE) if rng.random() < 0.7 else None
    thing = _pick(
        rng,
        "travel insurance",
        "trip insurance",
        "insurance",
        "a travel policy",
        "cover",
        "coverage",
        "trip protection",
    )
    said_level = None
    if coverage:
        values["coverage"] = coverage
        if rng.random() < 0.3:
            said_level = rng.choice([f"{coverage} is fine", f"{coverage} level",
                                     f"the {coverage} option", f"{coverage} tier",
                                     f"{coverage} plan please"])  # fmt: skip
        else:
            kind = thing.removeprefix("a ")
            thing = rng.choice([f"{coverage} {kind}", f"the {coverage} plan", f"{coverage} cover"])
    party = _insured(rng, trip.travellers) if rng.random() < 0.65 else None
    if party:
        values["travelers"] = trip.travellers
    if not first:
        opener = rng.choice([f"and add {thing}", f"plus {thing}", f"also {thing}"])
    elif party and rng.random() < 0.2:
        opener = rng.choice([f"Insure {party}", f"Please cover {party}", f"{thing} for {party}"])
        party = None
    else:
        opener = rng.choice([f"I need {thing}", f"Please add {thing}", f"Quote me {thing}",
                             f"{thing[0].upper()}{thing[1:]}", f"I'd like {thing}",
                             f"Can I get {thing}"])  # fmt: skip
    parts = [opener, *([said_level] if said_level else [])]
    if party and " " not in party:  # a bare count
        parts.append(rng.choice([f"for {party}", f"we're {party}", f"we are {party}"]))
    elif party:
        parts.append(rng.choice([f"for {party}", party, f"covering {party}",
                                 f"{party} travelling", f"insure {party}"]))  # fmt: skip
    dates = _policy_dates(rng, trip, values)
    if dates:
        parts.append(dates)
    if rng.random() < 0.5:
        said, written = _residence(rng)
        values["residence_country"] = written
        parts.append(said)
    if rng.random() < 0.4:
        written_money, _, _ = write_money(rng)
        values["trip_cost"] = written_money
        parts.append(rng.choice([f"the trip costs {written_money}",
                                 f"total cost {written_money}", f"worth {written_money}",
                                 f"insuring {written_money}", f"trip total {written_money}",
                                 f"I paid {written_money} for the trip",
                                 f"{written_money} in bookings"]))  # fmt: skip
    return Clause("insurance", _join(rng, parts), values)


CLAUSES: dict[Domain, Callable[..., Clause]] = {
    "flights": flight_clause,
    "hotels": hotel_clause,
    "cars": car_clause,
    "insurance": insurance_clause,
}


def _join(rng: random.Random, parts: list[str]) -> str:
    head, rest = parts[0], parts[1:]
    rng.shuffle(rest)
    glue = rng.choice([", ", ", ", " ", "; "])
    text = glue.join([head, *rest])
    return text[0].upper() + text[1:]


# --- requests ---------------------------------------------------------------------------------


def draw_trip(rng: random.Random) -> Trip:
    today = date(2026, 1, 1) + timedelta(days=rng.randint(0, 900))
    origin, destination = rng.sample(cities(), 2)
    start = future_date(rng, today, soon=rng.random() < 0.3)
    end = start + timedelta(days=rng.randint(1, 14)) if rng.random() < 0.7 else None
    return Trip(today, origin, destination, start, end, rng.choice((1, 1, 2, 2, 2, 3, 4, 5)))


def request(rng: random.Random, domains: list[Domain]) -> tuple[Trip, list[Clause]]:
    """One request over `domains`, in that order (the first clause opens the sentence)."""
    trip = draw_trip(rng)
    clauses = [CLAUSES[d](rng, trip, first=i == 0) for i, d in enumerate(domains)]
    return trip, clauses


def text_of(rng: random.Random, clauses: list[Clause]) -> str:
    sentences = [c.text for c in clauses]
    ends = [rng.choice((".", ".", "!", "")) for _ in sentences]
    out = sentences[0] + ends[0]
    for sentence, end in zip(sentences[1:], ends[1:], strict=True):
        out += (" " if out.endswith((".", "!")) else ", ") + sentence + end
    return out.strip()


def checked_draft(domain: Domain, values: dict[str, Any], text: str, today: date) -> Any | None:
    """The grounded request when the worker's checks keep `values` exactly, else None."""
    try:
        draft = DRAFTS[domain].model_validate(values)
    except ValueError:
        return None
    if unsupported_fields(draft, text):
        return None
    kept = reassigned_roles(completed_places(completed_dates(draft, text), text), text)
    if kept != draft:
        return None
    grounded = ground_draft(draft, today)
    return None if isinstance(grounded, Rejection) else grounded


def gold_norm(values: dict[str, Any], grounded: Any) -> dict[str, dict[str, Any]]:
    """The SGD-format gold: each value as written and its grounded canonical form, and what
    grounding derived from them (the city of an airport named as the pickup location)."""
    request = grounded.model_dump(mode="json", exclude=set(DERIVED_FIELDS))
    gold = {}
    for slot, canonical in request.items():
        if canonical is None:
            continue
        written = values.get(slot)
        gold[slot] = {
            "value": str(canonical if written is None else written),
            "canonical": str(canonical) if isinstance(canonical, bool) else canonical,
            "evidence": "user" if written is not None else "derived",
        }
    return gold


def records(
    count: int, *, seed: int, focus: Domain, trips: float = 0.35
) -> Iterator[dict[str, Any]]:
    """`count` records with gold for `focus` (and the other domains of a trip)."""
    rng = random.Random(f"skiff-synthetic:{focus}:{seed}")
    made = tries = 0
    while made < count:
        tries += 1
        if tries > count * 50:
            raise RuntimeError(f"the {focus} generator keeps failing its checks")
        domains: list[Domain] = [focus]
        if rng.random() < trips:
            others = [d for d in DOMAINS if d != focus]
            domains += rng.sample(others, rng.choice((1, 1, 2)))
            rng.shuffle(domains)
        trip, clauses = request(rng, domains)
        text = text_of(rng, clauses)
        gold = {}
        for clause in clauses:
            grounded = checked_draft(clause.domain, clause.values, text, trip.today)
            if grounded is None:
                break
            gold[clause.domain] = gold_norm(clause.values, grounded)
        else:
            made += 1
            yield {
                "id": f"gen-{focus}-{seed}-{made:05d}",
                "source": SOURCE,
                "kind": "trip" if len(domains) > 1 else "single",
                "dialogue_id": f"gen-{focus}-{seed}-{made:05d}",
                "domains": sorted(gold),
                "text": text,
                "reference_date": trip.today.isoformat(),
                "gold_norm": gold,
                "drafts": {c.domain: c.values for c in clauses},
            }
