"""S1 of the conversion loop: the records every model call and every accepted answer leave on
the call log (stream CALLS), built the same way by every producer.

* `call_record`: a domain worker's micro-SLM call;
* `candidate_records`: the LLM tier's calls for one step, one per candidate it checked;
* `unsupported_records`: work no micro-SLM covers (a train), recorded by the LLM tier under
  task `<work>.extract` with reason `no_model` so the flywheel can find it;
* `accepted_answer`: the answer a trip went on with for one domain (the planner).

Everything taken from the request or a model's answer (texts, params, drafts, the problem
messages, which may quote the text) goes through PII redaction here, so no unredacted value
leaves the process that built the record. Digests are taken on the real params: a hash does
not carry the values out, and answers are compared on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel

from skiff_contracts.domains import Domain
from skiff_contracts.messages import (
    Extracted,
    ExtractTask,
    NeedsEscalation,
    ResolveTask,
    Tier,
    WorkerReply,
    parts_of,
)
from skiff_contracts.problems import EscalationReason, Problem
from skiff_contracts.registry import ROUTER_TASK, AnswerAccepted, CallRecord, model_id_for, slug
from skiff_extraction.prompts import PROMPT_VERSION
from skiff_flywheel.redaction import redact, redact_parts, redact_value

LLM_TIER_TASK = "llm"  # the "task" of the LLM tier's model ids: `llm/<name>@<version>`

# Reasons that mean grounding ran and refused the answer; any other escalation stopped
# before grounding (or says nothing about it), so `grounded` stays None.
_GROUNDING_REFUSED: frozenset[EscalationReason] = frozenset(
    {"ungrounded", "ambiguous", "business_rule"}
)


def params_digest(params: BaseModel) -> str:
    """The hash answers are compared on: the same params, the same digest, in every producer."""
    return hashlib.sha256(params.model_dump_json().encode()).hexdigest()


def call_record_id(command_id: str, candidate: int = 0) -> str:
    """The id of the record of candidate `candidate` (0: the only one) of a command's calls.

    Deterministic, so a redelivered command's records are de-duplicated (`Nats-Msg-Id`) and
    an accepted answer can name the call it came from."""
    return f"{command_id}:call" if candidate == 0 else f"{command_id}:call.{candidate}"


def tier_model_id(name: str, version: str) -> str:
    """The LLM tier's model id: one model for every task, `llm/<name>@<version>`."""
    return model_id_for(LLM_TIER_TASK, name, version)


def extract_task(work: str) -> str:
    """The call log's task for some work: `flights.extract`, `trains.extract`."""
    return f"{work}.extract"


def work_of(task: str) -> str:
    """The work a task is about (`trains.extract` → `trains`): its subject token on CALLS."""
    return task.split(".", 1)[0]


def call_record(
    task: ExtractTask,
    reply: WorkerReply,
    model_id: str,
    *,
    prompt_version: str = PROMPT_VERSION,
) -> CallRecord | None:
    """The record of the micro-SLM call behind `reply`, or None when no model was called."""
    if not isinstance(reply, Extracted | NeedsEscalation) or reply.call is None:
        return None
    return _record(
        reply,
        task,
        record_id=call_record_id(task.message_id),
        model_id=task.model_id or model_id,
        text_parts=parts_of(task),
        shadow=task.shadow,
        prompt_version=prompt_version,
    )


def candidate_records(
    task: ResolveTask,
    candidates: Iterable[Extracted | NeedsEscalation],
    text_parts: Sequence[str],
    model_id: str,
    *,
    prompt_version: str = PROMPT_VERSION,
) -> list[CallRecord]:
    """The LLM tier's calls for one step: one record per candidate, each with its own
    validity and reason. `text_parts` joined by spaces are what the candidates read: the
    task's text, and what the trip's other steps know (redacted each on its own)."""
    return [
        _record(
            candidate,
            task,
            record_id=call_record_id(task.message_id, index),
            model_id=model_id,
            text_parts=text_parts,
            shadow=False,
            prompt_version=prompt_version,
        )
        for index, candidate in enumerate(candidates)
        if candidate.call is not None
    ]


def unsupported_records(task: ResolveTask, model_id: str) -> list[CallRecord]:
    """Work no micro-SLM covers: one record per kind of work asked for, task `<work>.extract`,
    reason `no_model`. No model was called, so it costs nothing and took no time."""
    records = []
    for work in dict.fromkeys(slug(name) or "unknown" for name in task.unsupported):
        records.append(
            CallRecord(
                record_id=f"{call_record_id(task.message_id)}.{work}",
                model_id=model_id,
                task=extract_task(work),
                tier="llm",
                trip_id=task.trip_id,
                step=task.step,
                valid=False,
                reason="no_model",
                latency_ms=0.0,
                tokens_in=0,
                tokens_out=0,
                occurred_at=task.occurred_at,
                input_text=redact_parts(parts_of(task)),
                errors=(f"no_model: no micro-SLM covers {work}",),
            )
        )
    return records


def route_record(
    *,
    record_id: str,
    model_id: str,
    tier: Tier,
    trip_id: str,
    text: str,
    labels: Sequence[str],
    decided: bool,
    latency_ms: float,
    scores: dict[str, float] | None = None,
    tokens: tuple[int, int] = (0, 0),
    cost_usd: float = 0.0,
    shadow: bool = False,
    prompt_version: str | None = None,
    errors: Sequence[Problem] = (),
) -> CallRecord:
    """One routing decision (task `router.route`): the router's, a shadow router's, or the
    LLM tier's on an unsure route. Undecided is reason `ambiguous`."""
    output: dict[str, Any] = {"labels": list(labels)}
    if scores is not None:
        output["scores"] = scores
    return CallRecord(
        record_id=record_id, model_id=model_id, task=ROUTER_TASK, tier=tier, trip_id=trip_id,
        step="route", valid=decided, reason=None if decided else "ambiguous",
        latency_ms=round(latency_ms, 3), tokens_in=tokens[0], tokens_out=tokens[1],
        cost_usd=cost_usd, shadow=shadow,
        output_digest=hashlib.sha256(",".join(sorted(labels)).encode()).hexdigest()[:16],
        prompt_version=prompt_version, input_text=redact(text).text, output=output,
        errors=tuple(_problem_text(p) for p in errors),
    )  # fmt: skip


def accepted_answer(
    *,
    trip_id: str,
    domain: Domain,
    answer: Extracted,
    answered_by: Tier,
    model_id: str,
    call_record_id: str | None,
    text_parts: Sequence[str],
    reference_date: date | None = None,
) -> AnswerAccepted:
    """The answer a trip goes on with for `domain`, redacted. `text_parts`, joined by spaces,
    are what it was read from (the request, the user's answers, the trip's context), each
    redacted on its own."""
    return AnswerAccepted(
        record_id=f"{trip_id}:{domain}:accepted",
        trip_id=trip_id,
        step=answer.step,
        task=extract_task(domain),
        call_record_id=call_record_id,
        answered_by=answered_by,
        model_id=model_id,
        input_text=redact_parts(text_parts),
        draft=redact_value(answer.draft) if answer.draft is not None else None,
        params=redact_value(answer.params.model_dump(mode="json")),
        output_digest=params_digest(answer.params),
        reference_date=reference_date,
    )


def _record(
    reply: Extracted | NeedsEscalation,
    task: ExtractTask | ResolveTask,
    *,
    record_id: str,
    model_id: str,
    text_parts: Sequence[str],
    shadow: bool,
    prompt_version: str,
) -> CallRecord:
    call = reply.call
    assert call is not None
    digest = None
    grounded = None
    output: dict[str, Any] | None
    errors: tuple[str, ...] = ()
    if isinstance(reply, Extracted):
        digest = params_digest(reply.params)
        output = redact_value(reply.params.model_dump(mode="json"))
        grounded = True
    else:
        output = redact_value(reply.attempt)
        grounded = False if reply.reason in _GROUNDING_REFUSED else None
        quoted = _strings(reply.attempt)
        errors = tuple(_problem_text(problem, quoted) for problem in reply.errors)
    return CallRecord(
        record_id=record_id,
        model_id=model_id,
        task=extract_task(reply.domain),
        tier=call.tier,
        trip_id=task.trip_id,
        step=task.step,
        valid=isinstance(reply, Extracted),
        reason=reply.reason if isinstance(reply, NeedsEscalation) else None,
        latency_ms=call.latency_ms,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        cost_usd=call.cost_usd,
        shadow=shadow,
        output_digest=digest,
        prompt_version=prompt_version,
        input_text=redact_parts(text_parts),
        output=output,
        grounded=grounded,
        errors=errors,
    )


def _problem_text(problem: Problem, quoted: Iterable[str] = ()) -> str:
    """One line per problem; redacted, since messages quote the text ("unknown city 'X'").

    A draft value the message quotes is redacted first on its own, as the draft itself is: a
    detector that looks at where a text ends ("…thanks, Ann") must see the value's end, not
    the quote mark after it."""
    message = problem.message
    for value in sorted(set(quoted), key=len, reverse=True):
        if value in message:
            message = message.replace(value, redact(value).text)
    where = f" ({problem.field})" if problem.field else ""
    return redact(f"{problem.code}{where}: {message}").text


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []
