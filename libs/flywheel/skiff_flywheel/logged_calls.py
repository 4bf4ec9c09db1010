"""The call log as S3 (cluster) and S4 (select) read it: `CallRecord` dicts to `LoggedCall`s.

A record is counted under a skip reason and left out when it is

* `unreadable`: not a JSON object, or not a valid `CallRecord`;
* `not_a_call`: its `kind` is not "call_record" (accepted answers logged beside the
  calls describe the same request again; counting them would double its volume);
* `shadow`: a mirrored call, whose answer is never used and whose live twin carries the
  same text;
* `no_text`: it has no request text, so there is nothing to embed.

Fields a newer producer adds are ignored rather than making the record unreadable: the
readers of the log may lag its writers.

The *answer* of a call is what the work's schema is read from (S4's schema stability): the
call's own `output` when the call was valid. An escalated call's output is a failed draft,
which says nothing about the schema the work settles on, so it is not an answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from skiff_contracts.messages import Tier
from skiff_contracts.registry import CallRecord

_FIELDS = frozenset(CallRecord.model_fields)

KeySet = tuple[str, ...]
"""An answer's shape: its key paths (nested keys joined by '.'), sorted."""


@dataclass(frozen=True)
class LoggedCall:
    """What clustering and selection use of one call record."""

    task: str
    tier: Tier
    model_id: str
    reason: str | None
    text: str
    cost_usd: float
    tokens_in: int
    tokens_out: int
    answer_keys: KeySet | None
    occurred_at: datetime


def key_set(answer: Mapping[str, Any], prefix: str = "") -> KeySet:
    """The key paths of `answer`, null values included: the schema, not which fields a request
    happened to fill. A list is one leaf."""
    paths: list[str] = []
    for key, value in answer.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            paths.extend(key_set(value, prefix=f"{path}."))
        else:
            paths.append(path)
    return tuple(sorted(paths))


def read_calls(records: Iterable[Mapping[str, Any]]) -> tuple[list[LoggedCall], Counter[str]]:
    """The usable calls among `records` (dicts in `CallRecord` JSON form), in order, and the
    others counted by skip reason."""
    calls: list[LoggedCall] = []
    skipped: Counter[str] = Counter()
    for raw in records:
        if not isinstance(raw, Mapping):
            skipped["unreadable"] += 1
            continue
        kind = raw.get("kind")
        if kind is not None and kind != "call_record":
            skipped["not_a_call"] += 1
            continue
        try:
            record = CallRecord.model_validate({k: v for k, v in raw.items() if k in _FIELDS})
        except ValidationError:
            skipped["unreadable"] += 1
            continue
        if record.shadow:
            skipped["shadow"] += 1
        elif not record.input_text or not record.input_text.strip():
            skipped["no_text"] += 1
        else:
            calls.append(_logged(record))
    return calls, skipped


def _logged(record: CallRecord) -> LoggedCall:
    answer = record.output if record.valid else None
    return LoggedCall(
        task=record.task,
        tier=record.tier,
        model_id=record.model_id,
        reason=record.reason,
        text=record.input_text or "",
        cost_usd=record.cost_usd,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        answer_keys=key_set(answer) if answer else None,
        occurred_at=record.occurred_at,
    )
