"""Build the LLM tier's bank of solved requests: `skiff_extraction/data/examples/<domain>.jsonl`.

`python libs/extraction/build_examples.py [--data …/train.jsonl] [--per-domain 300]`

Each line is one solved request: `{"id", "text", "draft", "source"}`, where `draft` is the
domain's draft (values as the user wrote them, exactly what a model must emit). For flights,
hotels and cars the drafts come from the SGD development data: each gold slot's `value`,
mapped to our draft fields (numbers and booleans typed, categories to our literals,
`dontcare` to null). Records are kept only when the draft passes our own checks (evidence,
grounding, business rules, at the data's reference date), so every example teaches an answer
the pipeline accepts.

Held out, so that neither the evaluation nor the calibration sees its own answers:

* the first `EVAL_RECORDS` (200) single-domain records of each domain — the evaluation set —
  and every record from those records' dialogues;
* the next `DEV_RECORDS` (200) single-domain records — the development split that calibration
  and retrieval measurements use — and their dialogues.

Insurance has no SGD data, and no SGD record carries context from another step, so
hand-written examples are added: a bank for insurance, and for every domain a few examples
whose text ends with the context sentence the LLM tier appends ("The trip's flight goes …"),
marked `"context": true`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skiff_contracts.domains import DRAFTS, Domain
from skiff_extraction.evidence import unsupported_fields
from skiff_travel.rules import Rejection, ground_draft

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sgd-train" / "train.jsonl"
OUT = Path(__file__).resolve().parent / "skiff_extraction" / "data" / "examples"
SGD_DOMAINS: tuple[Domain, ...] = ("flights", "hotels", "cars")
EVAL_RECORDS = 200
DEV_RECORDS = 200
REFERENCE_DATE = date(2019, 3, 1)
SEED = 7

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
INTEGER_FIELDS = frozenset({"passengers", "rooms", "guests", "star_rating", "nights", "travelers"})
BOOLEAN_FIELDS = frozenset({"nonstop", "refundable", "wifi", "pets_allowed"})
CATEGORY_FIELDS = frozenset({"seating_class", "car_type", "coverage"})


def _category(value: str) -> str:
    key = value.strip().casefold().replace("-", "_").replace(" ", "_")
    return {"first_class": "first"}.get(key, key)


def _typed(name: str, value: str) -> Any:
    """A gold value as our draft field holds it; raises ValueError when it does not fit."""
    if name in INTEGER_FIELDS:
        word = value.strip().casefold()
        return NUMBER_WORDS[word] if word in NUMBER_WORDS else int(value)
    if name == "review_rating":
        return float(value)
    if name in BOOLEAN_FIELDS:
        if value not in ("True", "False"):
            raise ValueError(value)
        return value == "True"
    if name in CATEGORY_FIELDS:
        return _category(value)
    return value


def draft_from_gold(domain: Domain, gold: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The draft a model should emit for a record with this `gold_norm[domain]`."""
    draft: dict[str, Any] = dict.fromkeys(DRAFTS[domain].model_fields)
    for name in draft:
        slot = gold.get(name)
        if slot is None or slot.get("value") in (None, "dontcare"):
            continue
        draft[name] = _typed(name, str(slot["value"]))
    return draft


def accepted(domain: Domain, text: str, draft: Mapping[str, Any]) -> bool:
    """Whether our own checks accept the draft for this text (so it is worth imitating)."""
    try:
        model = DRAFTS[domain].model_validate(draft)
    except ValidationError:
        return False
    if unsupported_fields(model, text):
        return False
    return not isinstance(ground_draft(model, REFERENCE_DATE), Rejection)


def read(data: Path) -> Iterator[dict[str, Any]]:
    with data.open() as handle:
        for line in handle:
            yield json.loads(line)


def held_out_dialogues(records: list[dict[str, Any]]) -> set[str]:
    """Dialogues of the evaluation and development records of every domain."""
    held: set[str] = set()
    for domain in SGD_DOMAINS:
        singles = [r for r in records if r["kind"] == "single" and r["domains"] == [domain]]
        held |= {r["dialogue_id"] for r in singles[: EVAL_RECORDS + DEV_RECORDS]}
    return held


def sgd_bank(records: list[dict[str, Any]], domain: Domain, size: int) -> list[dict[str, Any]]:
    """Up to `size` solved single-domain requests of `domain`, none from a held-out dialogue."""
    held = held_out_dialogues(records)
    seen: set[str] = set()
    bank: list[dict[str, Any]] = []
    for record in records:
        if record["kind"] != "single" or record["domains"] != [domain]:
            continue
        if record["dialogue_id"] in held or record["text"] in seen:
            continue
        try:
            draft = draft_from_gold(domain, record["gold_norm"].get(domain, {}))
        except (ValueError, KeyError):
            continue
        if not any(v is not None for v in draft.values()):
            continue
        if not accepted(domain, record["text"], draft):
            continue
        seen.add(record["text"])
        bank.append({"id": record["id"], "text": record["text"], "draft": draft, "source": "sgd"})
    random.Random(SEED).shuffle(bank)
    return sorted(bank[:size], key=lambda example: str(example["id"]))


def _hand(
    domain: Domain, number: int, text: str, context: bool = False, **values: Any
) -> dict[str, Any]:
    draft = dict.fromkeys(DRAFTS[domain].model_fields)
    draft.update(values)
    DRAFTS[domain].model_validate(draft)  # a typo in a hand-written example fails the build
    example: dict[str, Any] = {"id": f"hand-{domain}-{number}", "text": text, "draft": draft,
                               "source": "hand"}  # fmt: skip
    if context:
        example["context"] = True
    return example


def hand_written() -> dict[Domain, list[dict[str, Any]]]:
    """Insurance's whole bank, and context examples for every domain."""
    c = True
    return {
        "insurance": [
            _hand(
                "insurance",
                1,
                "Travel insurance for two of us please, basic cover is fine.",
                travelers=2,
                coverage="basic",
            ),
            _hand(
                "insurance",
                2,
                "I live in Germany and need premium insurance from April 3rd to April 10th.",
                coverage="premium",
                trip_start="April 3rd",
                trip_end="April 10th",
                residence_country="Germany",
            ),
            _hand(
                "insurance",
                3,
                "Add standard travel insurance for 4 travellers.",
                travelers=4,
                coverage="standard",
            ),
            _hand(
                "insurance",
                4,
                "Can you insure my trip? I'm going on the 12th and coming back on the 19th.",
                trip_start="the 12th",
                trip_end="the 19th",
            ),
            _hand(
                "insurance",
                5,
                "We're a family of five from Canada, cover us with the best plan you have.",
                travelers=5,
                residence_country="Canada",
            ),
            _hand(
                "insurance",
                6,
                "I just want the cheapest basic insurance for myself.",
                travelers=1,
                coverage="basic",
            ),
            _hand(
                "insurance",
                7,
                "Premium coverage please, trip starts next Friday and ends on Sunday the 17th.",
                coverage="premium",
                trip_start="next Friday",
                trip_end="Sunday the 17th",
            ),
            _hand(
                "insurance",
                8,
                "I'm a UK resident travelling with my wife, do you offer "
                "travel insurance for the two of us?",
                travelers=2,
                residence_country="UK",
            ),
            _hand(
                "insurance",
                9,
                "Book a flight to Miami and add insurance for 3 people.",
                travelers=3,
            ),
            _hand(
                "insurance",
                10,
                "Insurance for the trip from March 20th to March 27th, standard level.",
                coverage="standard",
                trip_start="March 20th",
                trip_end="March 27th",
            ),
            _hand(
                "insurance",
                11,
                "I need to rent a car in Dallas.",
            ),
            _hand(
                "insurance",
                12,
                "The three of us are from Australia and need basic travel cover.",
                travelers=3,
                coverage="basic",
                residence_country="Australia",
            ),
            _hand(
                "insurance",
                13,
                "Add basic travel insurance for both of us. The trip's "
                "flight goes from Boston to Denver, leaving 2019-03-12, returning 2019-03-16, "
                "for 2 passengers.",
                c,
                travelers=2,
                coverage="basic",
                trip_start="2019-03-12",
                trip_end="2019-03-16",
            ),
            _hand(
                "insurance",
                14,
                "And insure the whole trip, premium please. The trip's "
                "flight goes from Chicago to Miami, leaving 2019-04-02, for 1 passenger.",
                c,
                travelers=1,
                coverage="premium",
                trip_start="2019-04-02",
            ),
        ],
        "flights": [
            _hand(
                "flights",
                1,
                "I also need a flight there on the same day. The trip's hotel "
                "is in Seattle, checking in 2019-03-08, checking out 2019-03-11.",
                c,
                destination="Seattle",
                departure_date="2019-03-08",
            ),
            _hand(
                "flights",
                2,
                "Get me a flight back home from there after my stay, I live "
                "in Austin. The trip's hotel is in Denver, checking in 2019-03-12, checking "
                "out 2019-03-16.",
                c,
                origin="Denver",
                destination="Austin",
                departure_date="2019-03-16",
            ),
        ],
        "hotels": [
            _hand(
                "hotels",
                1,
                "Book a hotel there for those nights. The trip's flight goes "
                "from Boston to Denver, leaving 2019-03-12, returning 2019-03-16, for 2 "
                "passengers.",
                c,
                location="Denver",
                check_in_date="2019-03-12",
                check_out_date="2019-03-16",
            ),
            _hand(
                "hotels",
                2,
                "I need a room in that city when I land, 4 stars please. The "
                "trip's flight goes from Atlanta to Chicago, leaving 2019-03-05.",
                c,
                location="Chicago",
                check_in_date="2019-03-05",
                star_rating=4,
            ),
            _hand(
                "hotels",
                3,
                "And somewhere to stay near the destination for 3 nights. The "
                "trip's flight goes from Phoenix to Seattle, leaving 2019-03-20, returning "
                "2019-03-23.",
                c,
                location="Seattle",
                check_in_date="2019-03-20",
                nights=3,
            ),
        ],
        "cars": [
            _hand(
                "cars",
                1,
                "Rent me a compact car at the airport when I arrive. The trip's "
                "flight goes from Boston to Denver, leaving 2019-03-12, returning 2019-03-16.",
                c,
                pickup_city="Denver",
                pickup_location="the airport",
                pickup_date="2019-03-12",
                dropoff_date="2019-03-16",
                car_type="compact",
            ),
            _hand(
                "cars",
                2,
                "I'll need a car there for my stay. The trip's hotel is in "
                "Portland, checking in 2019-03-09, checking out 2019-03-12.",
                c,
                pickup_city="Portland",
                pickup_date="2019-03-09",
                dropoff_date="2019-03-12",
            ),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-domain", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    records = list(read(args.data))
    hand = hand_written()
    for domain, examples in hand.items():
        rejected = [e["id"] for e in examples if not accepted(domain, e["text"], e["draft"])]
        if rejected:
            raise SystemExit(f"hand-written examples our checks reject: {rejected}")
    args.out.mkdir(parents=True, exist_ok=True)
    for domain in (*SGD_DOMAINS, "insurance"):
        bank = sgd_bank(records, domain, args.per_domain) if domain in SGD_DOMAINS else []
        bank += hand.get(domain, [])
        path = args.out / f"{domain}.jsonl"
        path.write_text("".join(json.dumps(example) + "\n" for example in bank))
        print(f"{path}: {len(bank)} examples")


if __name__ == "__main__":
    main()
