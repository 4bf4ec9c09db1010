"""The question to ask the user when the LLM tier cannot settle a value either.

Only some problems are the user's to settle: a place that names several cities, a place or
country we do not know, and a value the user gave that no reading could keep. For those the
question names the value as the user wrote it and, where the catalog knows them, the
options ("Which Springfield do you mean: Springfield, IL, US or Springfield, MO, US?").
Anything else (an impossible date order, output that never parsed) is not a question for
the user, and `question_for` returns None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from skiff_contracts.problems import Problem
from skiff_travel.grounding import Ambiguous, Unknown, ground_city

MISSING_VALUE = "missing_value"
CLARIFY_CODES = frozenset({"ambiguous_city", "unknown_city", "unknown_country", MISSING_VALUE})
MAX_OPTIONS = 4
# Words that point at a place instead of naming it: the question asks for the place itself.
POINTERS = frozenset({
    "there", "here", "that city", "this city", "the city", "same city", "the same city",
    "same place", "the same place", "that place", "the destination", "home",
})  # fmt: skip

# What to ask for a value that could not be read, per draft field.
FIELD_QUESTIONS: dict[str, str] = {
    "origin": "Which city are you flying from?",
    "destination": "Which city are you flying to?",
    "departure_date": "On what date do you want to leave?",
    "return_date": "On what date do you want to fly back?",
    "passengers": "How many people are flying?",
    "seating_class": "Which class do you want to fly: economy, premium economy, business or first?",
    "airline": "Which airline do you want?",
    "location": "In which city do you need the hotel?",
    "check_in_date": "On what date do you check in?",
    "check_out_date": "On what date do you check out?",
    "nights": "How many nights do you need the hotel for?",
    "rooms": "How many rooms do you need?",
    "guests": "How many guests will stay?",
    "pickup_city": "In which city do you want to pick up the car?",
    "pickup_location": "Where exactly do you want to pick up the car?",
    "pickup_date": "On what date do you want to pick up the car?",
    "pickup_time": "At what time do you want to pick up the car?",
    "dropoff_date": "On what date will you return the car?",
    "car_type": "What type of car do you want (economy, compact, standard, SUV, …)?",
    "travelers": "How many travellers should the insurance cover?",
    "coverage": "Which coverage do you want: basic, standard or premium?",
    "trip_start": "On what date does the trip start?",
    "trip_end": "On what date does the trip end?",
    "residence_country": "Which country do you live in?",
}


def clarifiable(problems: Sequence[Problem]) -> bool:
    """Whether every problem is one the user can settle by answering a question."""
    return bool(problems) and all(p.code in CLARIFY_CODES for p in problems)


def _options(labels: Sequence[str]) -> str:
    shown = list(labels[:MAX_OPTIONS])
    if len(shown) == 1:
        return shown[0]
    return f"{', '.join(shown[:-1])} or {shown[-1]}"


def _ask(problem: Problem, written: str | None) -> str:
    field = problem.field or ""
    if problem.code == MISSING_VALUE or written is None or written.casefold().strip() in POINTERS:
        return FIELD_QUESTIONS.get(field, f"What is the {field.replace('_', ' ')} of your request?")
    if problem.code == "unknown_country":
        return f"I don't know a country called {written} — which country do you live in?"
    found = ground_city(written)
    if isinstance(found, Ambiguous):
        labels = [city.label for city in found.candidates]
        return f"Which {written} do you mean: {_options(labels)}?"
    if isinstance(found, Unknown) and found.suggestions:
        return f"I don't know a city called {written} — did you mean {_options(found.suggestions)}?"
    return f"I don't know a city called {written} — which city did you mean?"


def question_for(problems: Sequence[Problem], attempt: Mapping[str, Any] | None) -> str | None:
    """One question covering every problem, or None when any problem is not the user's.

    `attempt` is the draft the problems are about: the values as the user wrote them.
    """
    if not clarifiable(problems):
        return None
    asked: list[str] = []
    for problem in problems:
        value = (attempt or {}).get(problem.field or "")
        question = _ask(problem, str(value) if value is not None else None)
        if question not in asked:
            asked.append(question)
    return " ".join(asked)
