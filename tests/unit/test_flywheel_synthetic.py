"""Generated training requests: deterministic, every label one the worker's checks accept, and
the phrasings they exist for (airports, lengths, money, demonyms, several services at once)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from skiff_contracts.domains import DOMAINS, DRAFTS, Domain
from skiff_extraction.evidence import unsupported_fields
from skiff_flywheel.sgd import import_sgd
from skiff_flywheel.synthetic import records
from skiff_flywheel.synthetic_values import COUNTRIES
from skiff_flywheel.training_targets import target_draft
from skiff_travel.rules import Rejection, ground_draft

DEMONYMS = {d for _, demonyms in COUNTRIES.values() for d in demonyms}


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_same_seed_gives_the_same_requests(domain: Domain) -> None:
    assert list(records(40, seed=3, focus=domain)) == list(records(40, seed=3, focus=domain))
    assert list(records(40, seed=3, focus=domain)) != list(records(40, seed=4, focus=domain))


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_label_is_supported_by_its_text_and_grounds(domain: Domain) -> None:
    for record in records(150, seed=0, focus=domain):
        today = date.fromisoformat(record["reference_date"])
        for name, values in record["drafts"].items():
            draft = DRAFTS[name].model_validate(values)
            assert unsupported_fields(draft, record["text"]) == (), record
            assert not isinstance(ground_draft(draft, today), Rejection), record


def test_the_phrasings_sgd_lacks_are_there() -> None:
    seen: Counter[str] = Counter()
    for domain in DOMAINS:
        for record in records(300, seed=0, focus=domain):
            drafts = record["drafts"]
            seen["trip"] += len(drafts) > 1
            flight = drafts.get("flights", {})
            seen["airport code"] += any(
                len(flight.get(k) or "") == 3 and flight[k].isupper()
                for k in ("origin", "destination")
            )
            seen["length"] += "days" in str(drafts.get("insurance", {}).get("trip_end"))
            seen["money"] += "trip_cost" in drafts.get("insurance", {})
            seen["demonym"] += str(
                drafts.get("insurance", {}).get("residence_country", "")
            ).endswith(("an", "ish", "ch", "ss"))
            seen["year"] += any(str(y) in record["text"] for y in (2026, 2027, 2028))
    assert all(
        seen[k] >= 10 for k in ("trip", "airport code", "length", "money", "demonym", "year")
    ), seen


def test_generated_records_import_to_train_only_with_their_exact_drafts(tmp_path: Path) -> None:
    source = tmp_path / "generated.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records(60, seed=0, focus="cars")))
    curated = import_sgd(None, "cars.extract", train_only=[source])
    assert curated.splits["eval"] == [] and len(curated.splits["train"]) >= 55
    for example in curated.splits["train"]:
        assert example.source == "generated" and example.draft is not None
        assert target_draft(example, "cars") == {
            name: example.draft.get(name) for name in DRAFTS["cars"].model_fields
        }
