"""Deterministic travel grounding: the city catalog, dates and times, and business rules.

A model turns a request into a *draft* (places and dates as the user wrote them); this
package grounds the draft into a typed *request* or rejects it with typed problems:

* `catalog`: cities with airports (`City`, `Catalog`, `default_catalog`);
* `grounding`: `ground_city` -> `Grounded` | `Unknown` | `Ambiguous`, and `ground_country`;
* `dates`: `resolve_date`, `resolve_time` and their errors (`ImpossibleDateError` for a date
  the calendar does not have);
* `rules`: `ground_draft` -> a request or a `Rejection`.
"""

from skiff_travel.catalog import Catalog, City, default_catalog
from skiff_travel.dates import (
    DateParseError,
    ImpossibleDateError,
    TimeParseError,
    resolve_date,
    resolve_time,
)
from skiff_travel.grounding import Ambiguous, Grounded, Unknown, ground_city, ground_country
from skiff_travel.rules import Rejection, ground_draft

__all__ = [
    "Ambiguous",
    "Catalog",
    "City",
    "DateParseError",
    "Grounded",
    "ImpossibleDateError",
    "Rejection",
    "TimeParseError",
    "Unknown",
    "default_catalog",
    "ground_city",
    "ground_country",
    "ground_draft",
    "resolve_date",
    "resolve_time",
]
