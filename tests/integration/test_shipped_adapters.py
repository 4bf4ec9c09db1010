"""The shipped adapters on the real engine: each domain's champion reads a request written for
no prompt, example bank or training set exactly, where the bundled base model with its
few-shot prompt does not.

Each request is in a phrasing the SGD data and the generator do not use (airport names and
codes, numeric and European dates, money with its currency, demonyms), with every value the
text asks for asserted, and nothing more: a value it does not give must stay null.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from skiff_cli.batch import local_extractors
from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.messages import Extracted, ExtractTask, NeedsEscalation
from skiff_extraction.pipeline import Extractor
from skiff_extraction.prompts import EXAMPLES
from skiff_flywheel.synthetic import records
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_models import shipped_cards

pytestmark = pytest.mark.model

TODAY = date(2027, 1, 11)
CASES: dict[Domain, tuple[str, dict[str, Any]]] = {
    "flights": (
        "JFK to LAX for two passengers, out 14 April 2027 and home the 21st, economy.",
        {"origin": "New York", "origin_iata": "JFK", "destination": "Los Angeles",
         "destination_iata": "LAX", "departure_date": "2027-04-14", "return_date": "2027-04-21",
         "passengers": 2, "seating_class": "economy"},
    ),
    "hotels": (
        "Looking for a place in Lisbon, 3 nights from June 2nd, 2 rooms for 4 adults, must "
        "have wifi.",
        {"location": "Lisbon", "location_iata": "LIS", "check_in_date": "2027-06-02",
         "nights": 3, "rooms": 2, "guests": 4, "wifi": True},
    ),
    "cars": (
        "Pick-up at O'Hare on 5/3 around 9am, returning the car 5/7, an SUV please.",
        {"pickup_city": "Chicago", "pickup_city_iata": "ORD", "pickup_location": "O'Hare",
         "pickup_airport": "ORD", "pickup_date": "2027-05-03", "pickup_time": "09:00:00",
         "dropoff_date": "2027-05-07", "car_type": "suv"},
    ),
    "insurance": (
        "Travel insurance for 3 travellers please: we're Dutch, the trip costs €4.250 and runs "
        "10 March to 24 March, standard cover.",
        {"travelers": 3, "residence_country": "Netherlands", "trip_cost": 4250.0,
         "trip_cost_currency": "EUR", "trip_start": "2027-03-10", "trip_end": "2027-03-24",
         "coverage": "standard"},
    ),
}  # fmt: skip
REPO = Path(__file__).resolve().parents[2]
DEVSET = REPO / "libs" / "models" / "devsets"
BANK = REPO / "libs" / "extraction" / "skiff_extraction" / "data" / "examples"


@pytest.fixture(scope="module")
async def extractors(engine: LlamaCppEngine) -> dict[str, dict[Domain, Extractor]]:
    # No confidence gate: these compare what each model reads; the gate is the card's business
    # (test_shipped_models) and the worker's (test_worker_versions).
    return {
        "champion": await local_extractors(engine, "champion", {}, 0.0),
        "base": await local_extractors(engine, "base", {}, 0.0),
    }


async def values(extractor: Extractor, domain: Domain, text: str) -> dict[str, Any] | str:
    task = ExtractTask(
        trip_id="t-shipped", step=f"{domain}.extract", domain=domain, text=text,
        reference_date=TODAY,
    )  # fmt: skip
    result = await extractor.extract(task)
    if isinstance(result, NeedsEscalation):
        return f"escalated: {result.reason}"
    assert isinstance(result, Extracted)
    return result.params.model_dump(mode="json", exclude={"domain"}, exclude_none=True)


def test_every_domain_ships_an_adapter_measured_against_the_base_model() -> None:
    cards = shipped_cards()
    assert set(cards) == set(DOMAINS)
    for card in cards.values():
        assert card.adapter is not None and card.adapter_sha256
        assert card.evaluations and card.evaluations[0].baseline_model is not None


def test_the_requests_are_in_no_prompt_example_bank_or_training_set() -> None:
    texts = [text for text, _ in CASES.values()]
    known = {t for d in DOMAINS for t, _ in EXAMPLES[d]}
    known |= {r["text"] for d in DOMAINS for r in records(1200, seed=0, focus=d)}
    known |= {
        json.loads(line)["text"]
        for path in [*DEVSET.glob("*.jsonl"), *BANK.glob("*.jsonl")]
        for line in path.read_text("utf-8").splitlines()
    }
    assert not known & set(texts)


@pytest.mark.parametrize("domain", DOMAINS)
async def test_the_shipped_adapter_reads_what_the_base_model_does_not(
    extractors: dict[str, dict[Domain, Extractor]], domain: Domain
) -> None:
    text, expected = CASES[domain]
    assert await values(extractors["champion"][domain], domain, text) == expected
    assert await values(extractors["base"][domain], domain, text) != expected
