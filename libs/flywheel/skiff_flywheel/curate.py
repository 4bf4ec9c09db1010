"""S2 of the conversion loop: the call log to a training dataset.

`curate` joins one task's accepted answers (`AnswerAccepted`) to the call records they name:
each accepted answer whose params validate against the domain's request model and whose
draft validates against its draft model is an example, the text it was read from → the
draft (`Example.spans`, what the micro-SLM is trained to produce) and the params. Everything
else is dropped and counted by reason: calls whose step never got an accepted answer
(`no_accepted_answer`), calls another answer of their step won over (`not_accepted`: an
escalation, a losing LLM candidate), shadows, other tasks, unreadable records, a record seen
twice (`duplicate_record`: re-published after the de-duplication window). Then duplicates
are removed and the rest split into train and eval. The same dedup and split serve imported
data (`sgd`).

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

from skiff_contracts.domains import DOMAINS, DRAFTS, REQUESTS, Domain
from skiff_contracts.registry import CALL_LOG, AnswerAccepted, CallRecord
from skiff_flywheel.dataset import SPLITS, Example, Split

DEFAULT_EVAL_SHARE = 0.2
NEAR_DUPLICATE_JACCARD = 0.9
RULES = {
    "join": "one example per accepted answer with valid params and draft; calls are not examples",
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
    """A dataset's splits from the call log's records (dicts, either kind) of one task."""
    examples, dropped = examples_from_log(records, task)
    return finish(examples, dropped, eval_share)


def examples_from_log(
    records: Iterable[Mapping[str, Any]], task: str
) -> tuple[list[Example], Counter[str]]:
    """The labelled examples among `records` (one per accepted answer), and the rest counted
    by reason."""
    domain = domain_of(task)
    dropped: Counter[str] = Counter()
    calls: list[CallRecord] = []
    answers: list[AnswerAccepted] = []
    seen: set[str] = set()
    for raw in records:
        try:
            record = CALL_LOG.validate_python(raw)
        except ValidationError:
            dropped["unreadable"] += 1
            continue
        if record.record_id in seen:
            dropped["duplicate_record"] += 1
            continue
        seen.add(record.record_id)
        if record.task != task:
            dropped["other_task"] += 1
        elif isinstance(record, AnswerAccepted):
            answers.append(record)
        elif record.shadow:
            dropped["shadow"] += 1  # a mirrored call: never the answer a trip went on with
        else:
            calls.append(record)
    joined = {answer.call_record_id for answer in answers}
    answered = {answer.trip_id for answer in answers}
    for call in calls:
        if call.record_id not in joined:
            dropped["not_accepted" if call.trip_id in answered else "no_accepted_answer"] += 1
    examples = []
    for answer in answers:
        example = _example(answer, task, domain)
        if isinstance(example, str):
            dropped[example] += 1
        else:
            examples.append(example)
    return examples, dropped


def _example(answer: AnswerAccepted, task: str, domain: Domain) -> Example | str:
    """The example an accepted answer makes, or why it makes none."""
    if not answer.input_text:
        return "no_text"
    if answer.draft is None:
        return "no_draft"  # accepted before drafts were recorded: nothing to train toward
    try:
        params = REQUESTS[domain].model_validate(answer.params)
    except ValidationError:
        return "invalid_params"
    try:
        draft = DRAFTS[domain].model_validate(answer.draft)
    except ValidationError:
        return "invalid_draft"
    return Example(
        example_id=answer.record_id,
        task=task,
        text=answer.input_text,
        params=params.model_dump(mode="json"),
        source="calls",
        group=normalize_text(answer.input_text),
        answered_by=answer.answered_by,
        spans=spans_of(draft.model_dump(mode="json")),
        reference_date=answer.reference_date,
        draft=draft.model_dump(mode="json"),
    )


def spans_of(draft: Mapping[str, Any]) -> dict[str, str]:
    """A draft's values as `Example.spans`: strings as written, other values as JSON ("2",
    "true"), nulls left out (as the SGD import leaves out what the user did not say)."""
    return {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in draft.items()
        if value is not None
    }


def finish(
    examples: Iterable[Example],
    dropped: Counter[str],
    eval_share: float,
    fixed: Mapping[str, Split] | None = None,
) -> Curated:
    """Deduplicate, then split by group key (`fixed` names the split of some groups)."""
    if not 0 <= eval_share < 1:
        raise ValueError(f"eval_share must be in [0, 1), not {eval_share}")
    kept = deduplicate(examples, dropped)
    splits: dict[Split, list[Example]] = {split: [] for split in SPLITS}
    for example in kept:
        split = (fixed or {}).get(example.group) or split_of(example.group, eval_share)
        splits[split].append(example)
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
