"""What the trip's other steps know, as one sentence appended to the request text.

"Book a hotel there for those nights" names no city and no date; the flight step already
settled both. The LLM tier appends a sentence such as "The trip's flight goes from Boston
to Denver, leaving 2026-03-12, returning 2026-03-16, for 2 passengers." to the text the
model reads *and* to the text the evidence check reads: a value taken from it is then
supported by text the tier was given, and the checks stay exactly the SLM's. Dates are ISO,
which the date resolver reads and the evidence check matches digit by digit; places are the
catalog's canonical names, which ground again to the same city.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from skiff_contracts.domains import (
    CarsRequest,
    Domain,
    FlightsRequest,
    HotelsRequest,
    InsuranceRequest,
)

Known = FlightsRequest | HotelsRequest | CarsRequest | InsuranceRequest


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _join(subject: str, parts: list[str | None]) -> str | None:
    said = [part for part in parts if part]
    return f"{subject} {', '.join(said)}." if said else None


def _flight(known: FlightsRequest) -> str | None:
    route = " ".join(
        part
        for part in (
            f"from {known.origin}" if known.origin else None,
            f"to {known.destination}" if known.destination else None,
        )
        if part
    )
    people = known.passengers
    return _join(
        "The trip's flight",
        [
            f"goes {route}" if route else None,
            f"leaving {_iso(known.departure_date)}" if known.departure_date else None,
            f"returning {_iso(known.return_date)}" if known.return_date else None,
            f"for {people} passenger{'s' if people != 1 else ''}" if people else None,
        ],
    )


def _hotel(known: HotelsRequest) -> str | None:
    return _join(
        "The trip's hotel",
        [
            f"is in {known.location}" if known.location else None,
            f"checking in {_iso(known.check_in_date)}" if known.check_in_date else None,
            f"checking out {_iso(known.check_out_date)}" if known.check_out_date else None,
            f"for {known.nights} nights" if known.nights and not known.check_out_date else None,
            f"for {known.guests} guests" if known.guests else None,
        ],
    )


def _car(known: CarsRequest) -> str | None:
    return _join(
        "The trip's rental car",
        [
            f"is picked up in {known.pickup_city}" if known.pickup_city else None,
            f"on {_iso(known.pickup_date)}" if known.pickup_date else None,
            f"returned {_iso(known.dropoff_date)}" if known.dropoff_date else None,
        ],
    )


def _insurance(known: InsuranceRequest) -> str | None:
    return _join(
        "The trip's insurance",
        [
            f"covers {known.travelers} travelers" if known.travelers else None,
            f"from {_iso(known.trip_start)}" if known.trip_start else None,
            f"to {_iso(known.trip_end)}" if known.trip_end else None,
        ],
    )


def context_sentence(known: Mapping[Domain, Known], domain: Domain) -> str:
    """One sentence per other step that knows something ("" when none does)."""
    sentences: list[str | None] = []
    for other, request in known.items():
        if other == domain:
            continue
        if isinstance(request, FlightsRequest):
            sentences.append(_flight(request))
        elif isinstance(request, HotelsRequest):
            sentences.append(_hotel(request))
        elif isinstance(request, CarsRequest):
            sentences.append(_car(request))
        else:
            sentences.append(_insurance(request))
    return " ".join(sentence for sentence in sentences if sentence)


def with_context(text: str, sentence: str, limit: int) -> str:
    """`text` followed by the context sentence, the sentence cut so the whole fits `limit`."""
    if not sentence:
        return text
    room = limit - len(text) - 1
    if room <= 0:
        return text
    return f"{text} {sentence[:room]}"
