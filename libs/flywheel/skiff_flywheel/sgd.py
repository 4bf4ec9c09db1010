"""Importing externally labelled data: the SGD development set (`shared/data/sgd-train`).

Each SGD record's `gold_norm[domain]` already uses the domain request's field names (see its
README). Which gold slots become request fields, and when a value counts as the gold one, is
the bench scorer's rule (`skiff_extraction.scoring`): this module takes the fields that
scorer scores (`DERIVED_FIELDS` excluded), converts each gold `canonical` to the request's
type, and keeps a record only when every converted value `matches` its gold slot under that
scorer, so an imported label scores 100% against its own gold. Places are grounded in the
travel catalog as the worker grounds them (canonical city name and IATA code); "dontcare"
stays null. Examples are grouped by dialogue id, so no dialogue is in both splits.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skiff_contracts.domains import REQUESTS, Domain
from skiff_extraction.scoring import DERIVED_FIELDS, PLACE_SLOTS, matches
from skiff_flywheel.curate import DEFAULT_EVAL_SHARE, Curated, domain_of, finish
from skiff_flywheel.dataset import Example, Split
from skiff_travel import Grounded, ground_city

SOURCE = "sgd"
REFERENCE_DATE = date(2019, 3, 1)  # SGD resolves "today" as Friday 2019-03-01 (its README)
_CATEGORY_SLOTS = frozenset({"seating_class", "car_type"})


class SgdFormatError(Exception):
    """The path is not an sgd-train directory (or its train.jsonl)."""


def import_sgd(
    path: Path | None,
    task: str,
    *,
    eval_share: float = DEFAULT_EVAL_SHARE,
    kinds: tuple[str, ...] = ("single", "trip"),
    train_only: Sequence[Path] = (),
    eval_only: Sequence[Path] = (),
) -> Curated:
    """The records with gold for `task`'s domain, as dataset splits.

    `path`'s records are split by dialogue (`eval_share`); every record of a `train_only`
    file (generated requests) goes to train and every one of an `eval_only` file (a
    hand-written development set) to eval. Duplicates are removed across all of them, the
    evaluation files' records winning, so no text is in both splits.
    """
    domain = domain_of(task)
    dropped: Counter[str] = Counter()
    held = [e for p in eval_only for e in _examples(p, task, domain, kinds, dropped)]
    shared = list(_examples(path, task, domain, kinds, dropped)) if path else []
    trained = [e for p in train_only for e in _examples(p, task, domain, kinds, dropped)]
    fixed: dict[str, Split] = {e.group: "eval" for e in held}
    fixed |= {e.group: "train" for e in trained}
    return finish([*held, *shared, *trained], dropped, eval_share, fixed)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    source = path / "train.jsonl" if path.is_dir() else path
    if not source.is_file():
        raise SgdFormatError(f"no train.jsonl at {path}")
    with source.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise SgdFormatError(f"{source}:{number}: not JSON ({error})") from error


def _examples(
    path: Path, task: str, domain: Domain, kinds: tuple[str, ...], dropped: Counter[str]
) -> Iterator[Example]:
    for record in _records(path):
        gold = record.get("gold_norm", {}).get(domain)
        if gold is None:
            continue  # another domain's record: not this task's data at all
        if record.get("kind") not in kinds:
            dropped["other_kind"] += 1
            continue
        params = to_params(domain, gold)
        if params is None:
            dropped["unmapped_gold"] += 1
            continue
        source = str(record.get("source", SOURCE))
        today = record.get("reference_date")
        yield Example(
            example_id=record["id"],
            task=task,
            text=record["text"],
            params=params,
            source=source,
            group=f"{source}:{record['dialogue_id']}",
            spans={
                slot: str(value["value"])
                for slot, value in sorted(gold.items())
                if slot in params and value.get("canonical") != "dontcare"
            },
            reference_date=date.fromisoformat(today) if today else REFERENCE_DATE,
            draft=record.get("drafts", {}).get(domain),
        )


def to_params(domain: Domain, gold: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The domain request (JSON form) the gold slots stand for, or None when one cannot be
    converted so that the bench scorer would accept it."""
    model = REQUESTS[domain]
    fields = set(model.model_fields) - DERIVED_FIELDS
    values: dict[str, Any] = {}
    for slot, slot_gold in gold.items():
        if slot not in fields:
            continue  # a gold slot our schema has no field for (price, red_eye, ...)
        canonical = slot_gold.get("canonical", slot_gold.get("value"))
        if canonical == "dontcare":
            continue
        if slot in PLACE_SLOTS:
            place = ground_city(str(canonical))
            values[slot] = str(canonical)
            if isinstance(place, Grounded):
                # The worker's name for the city, unless the scorer would not take it.
                if matches(slot, place.city.name, slot_gold):
                    values[slot] = place.city.name
                values[f"{slot}_iata"] = place.iata
        elif slot in _CATEGORY_SLOTS:
            values[slot] = _category(str(canonical))
        else:
            values[slot] = canonical
    try:
        params = model.model_validate(values).model_dump(mode="json")
    except ValidationError:
        return None
    if not all(matches(slot, params.get(slot), gold[slot]) for slot in gold if slot in fields):
        return None
    return params


def _category(value: str) -> str:
    """'Premium Economy' -> 'premium_economy', 'Full-size' -> 'full_size'."""
    key = "_".join(value.casefold().replace("-", " ").split())
    return "first" if key == "first_class" else key
