"""S2 of the conversion loop: logged calls to a training dataset.

`curate` keeps the call records of one task whose step was answered (`final_answer`) with an
answer that validates against the domain's request model, removes duplicates, and splits
the rest into train and eval. The same dedup and split serve imported data (`sgd`).

* exact duplicate: the same text after case folding and collapsing white space; the first
  record wins (the export is in stream order, so the earliest).
* near duplicate: the same final answer and a token-set Jaccard similarity of at least 0.9
  (tokens are the words of the folded text, punctuation dropped, digits kept). Stripping
  digits would merge "2 rooms on March 3" with "3 rooms on March 5", which teach different
  answers, and the same words in another order ("Boston to Denver", "Denver to Boston") are
  a different request, hence the same-answer condition.
* split: a request goes to eval when the sha256 of its group key, read as a fraction, is
  below the eval share. The key is the normalised text for calls and the dialogue id for SGD,
  so one request (or one dialogue) never lands in both splits, and a request keeps its split
  when the dataset grows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from skiff_contracts.domains import DOMAINS, REQUESTS, Domain
from skiff_contracts.registry import CallRecord
from skiff_flywheel.dataset import SPLITS, Example, Split

DEFAULT_EVAL_SHARE = 0.2
NEAR_DUPLICATE_JACCARD = 0.9
RULES = {
    "exact_duplicate": "same case-folded, white-space-collapsed text; the first record wins",
    "near_duplicate": f"same final answer and token-set Jaccard >= {NEAR_DUPLICATE_JACCARD}",
    "split": "eval when sha256(group key) / 2**256 < eval_share",
}
_TOKEN = re.compile(r"[^\W_]+")


class UnknownTask(Exception):
    """The task is not '<domain>.extract' for a known domain."""


@dataclass(frozen=True)
class Curated:
    """The examples of each split, and how many records were left out by reason."""

    splits: dict[Split, list[Example]]
    dropped: dict[str, int]


def domain_of(task: str) -> Domain:
    """The domain of an extraction task ('flights.extract' -> 'flights')."""
    domain, _, operation = task.partition(".")
    for known in DOMAINS:
        if known == domain and operation == "extract":
            return known
    raise UnknownTask(f"{task!r} is not '<domain>.extract' with a domain of {DOMAINS}")


def normalize_text(text: str) -> str:
    """The exact-duplicate key: case-folded, white space collapsed."""
    return " ".join(text.casefold().split())


def tokens(text: str) -> frozenset[str]:
    """The near-duplicate token set: words of the folded text, punctuation dropped."""
    return frozenset(_TOKEN.findall(text.casefold()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def split_of(group: str, eval_share: float) -> Split:
    """The split a group key belongs to: the same key, the same split, on every run."""
    fraction = int(hashlib.sha256(group.encode("utf-8")).hexdigest(), 16) / 2**256
    return "eval" if fraction < eval_share else "train"


def curate(
    records: Iterable[Mapping[str, Any]], task: str, *, eval_share: float = DEFAULT_EVAL_SHARE
) -> Curated:
    """A dataset's splits from call records (dicts in `CallRecord` form) of one task."""
    examples, dropped = examples_from_calls(records, task)
    return finish(examples, dropped, eval_share)


def examples_from_calls(
    records: Iterable[Mapping[str, Any]], task: str
) -> tuple[list[Example], Counter[str]]:
    """The labelled examples among `records`, and the others counted by reason."""
    request_model = REQUESTS[domain_of(task)]
    examples: list[Example] = []
    dropped: Counter[str] = Counter()
    for raw in records:
        try:
            record = CallRecord.model_validate(raw)
        except ValidationError:
            dropped["unreadable"] += 1
            continue
        if record.task != task:
            dropped["other_task"] += 1
        elif record.shadow:
            dropped["shadow"] += 1  # a mirrored call: its live twin carries the same text
        elif not record.input_text:
            dropped["no_text"] += 1
        elif record.final_answer is None:
            dropped["no_final_answer"] += 1
        else:
            try:
                params = request_model.model_validate(record.final_answer)
            except ValidationError:
                dropped["invalid_final_answer"] += 1
                continue
            examples.append(
                Example(
                    example_id=record.record_id,
                    task=task,
                    text=record.input_text,
                    params=params.model_dump(mode="json"),
                    source="calls",
                    group=normalize_text(record.input_text),
                    answered_by=record.answered_by,
                )
            )
    return examples, dropped


def finish(examples: Iterable[Example], dropped: Counter[str], eval_share: float) -> Curated:
    """Deduplicate, then split by group key."""
    if not 0 <= eval_share < 1:
        raise ValueError(f"eval_share must be in [0, 1), not {eval_share}")
    kept = deduplicate(examples, dropped)
    splits: dict[Split, list[Example]] = {split: [] for split in SPLITS}
    for example in kept:
        splits[split_of(example.group, eval_share)].append(example)
    return Curated(splits=splits, dropped=dict(sorted(dropped.items())))


def deduplicate(examples: Iterable[Example], dropped: Counter[str]) -> list[Example]:
    """`examples` without exact and near duplicates (counted into `dropped`), in order."""
    seen: set[str] = set()
    by_answer: dict[str, list[frozenset[str]]] = {}
    kept: list[Example] = []
    for example in examples:
        key = normalize_text(example.text)
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        words = tokens(example.text)
        same_answer = by_answer.setdefault(json.dumps(example.params, sort_keys=True), [])
        if any(jaccard(words, other) >= NEAR_DUPLICATE_JACCARD for other in same_answer):
            dropped["near_duplicate"] += 1
            continue
        same_answer.append(words)
        kept.append(example)
    return kept
