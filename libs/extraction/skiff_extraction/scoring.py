"""Slot accuracy against labelled data in the SGD development format (`gold_norm`).

A gold slot is correct when the extracted value, normalised, equals the gold `canonical`
(or, for free-text slots, any spoken variant). `dontcare` gold values expect null. A value
extracted where the gold has none is counted as *invented*: the model must not make values up
(a value grounding derives from another slot the user gave, such as an airport's city, is not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skiff_contracts.domains import REQUESTS, Domain

PLACE_SLOTS = frozenset({"origin", "destination", "location", "pickup_city"})
FREE_TEXT_SLOTS = frozenset({"airline", "hotel_name", "pickup_location", "car_name"})
# Fields grounding adds beside what the user said: never a slot of their own.
DERIVED_FIELDS = frozenset({
    "domain", "origin_iata", "destination_iata", "location_iata", "pickup_city_iata",
    "pickup_airport", "trip_cost_currency",
})  # fmt: skip


def _text(value: object) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(value).casefold()).strip()


def _place(value: object) -> str:
    return _text(str(value).split(",")[0])


def _category(value: object) -> str:
    return _text(value).replace(" ", "_").replace("first_class", "first").replace("-", "_")


def matches(slot: str, predicted: object, gold: Mapping[str, Any]) -> bool:
    """Whether `predicted` (a request field value, JSON form) equals the gold slot value."""
    canonical = gold.get("canonical", gold.get("value"))
    if canonical == "dontcare":
        return predicted is None
    if predicted is None:
        return False
    if slot in PLACE_SLOTS:
        return _place(predicted) == _place(canonical)
    if slot in FREE_TEXT_SLOTS:
        options = {_text(v) for v in [canonical, gold.get("value"), *gold.get("variants", [])]}
        return _text(predicted) in options
    if isinstance(predicted, bool):
        return str(predicted) == str(canonical)
    if isinstance(predicted, int | float):
        try:
            return abs(float(predicted) - float(canonical)) < 0.01
        except ValueError:
            return False
    if slot.endswith("_time"):
        return str(predicted)[:5] == str(canonical)[:5]
    if slot in {"seating_class", "car_type"}:
        return _category(predicted) == _category(canonical)
    return str(predicted) == str(canonical)


def _given_by_another_slot(slot: str, params: Mapping[str, Any]) -> bool:
    """A pickup city that is the city of the airport the pickup location names ("at O'Hare"
    gives Chicago): grounding derives it from what the user said, so a gold that leaves it
    out does not make it invented."""
    return slot == "pickup_city" and params.get("pickup_airport") is not None


@dataclass
class SlotScore:
    """Totals over many records of one domain."""

    records: int = 0
    gold_slots: int = 0
    correct: int = 0
    predicted_slots: int = 0
    invented: int = 0
    exact_records: int = 0
    per_slot: dict[str, list[int]] = field(default_factory=dict)  # slot → [correct, total]

    @property
    def accuracy(self) -> float:
        return self.correct / self.gold_slots if self.gold_slots else 0.0

    @property
    def invented_rate(self) -> float:
        return self.invented / self.predicted_slots if self.predicted_slots else 0.0

    def add(
        self, domain: Domain, params: Mapping[str, Any] | None, gold: Mapping[str, Any]
    ) -> None:
        """Score one record: `params` is the extracted request (None when nothing was kept)."""
        fields = set(REQUESTS[domain].model_fields) - DERIVED_FIELDS
        scored = {slot: value for slot, value in gold.items() if slot in fields}
        params = params or {}
        all_right = True
        self.records += 1
        for slot, gold_value in scored.items():
            ok = matches(slot, params.get(slot), gold_value)
            self.gold_slots += 1
            self.correct += ok
            tally = self.per_slot.setdefault(slot, [0, 0])
            tally[0] += ok
            tally[1] += 1
            all_right &= ok
        for slot in fields:
            if params.get(slot) is not None:
                if slot not in scored and _given_by_another_slot(slot, params):
                    continue
                self.predicted_slots += 1
                if slot not in scored:
                    self.invented += 1
                    all_right = False
        self.exact_records += all_right

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "gold_slots": self.gold_slots,
            "slot_accuracy": round(self.accuracy, 4),
            "invented_rate": round(self.invented_rate, 4),
            "exact_record_rate": round(self.exact_records / self.records, 4) if self.records else 0,
            "per_slot": {k: round(c / t, 3) for k, (c, t) in sorted(self.per_slot.items())},
        }
