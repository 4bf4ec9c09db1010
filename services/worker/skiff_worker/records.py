"""One `CallRecord` per model call: the registry's live metrics and the conversion loop's log.

Everything taken from the request or the model's answer (the text, the params or draft, the
problem messages, which may quote the text) goes through PII redaction here, so no
unredacted value leaves the worker on the CALLS stream.
"""

from __future__ import annotations

import hashlib

from skiff_contracts.messages import Extracted, ExtractTask, NeedsEscalation, WorkerReply
from skiff_contracts.problems import EscalationReason, Problem
from skiff_contracts.registry import CallRecord
from skiff_extraction.prompts import PROMPT_VERSION
from skiff_flywheel.redaction import redact, redact_value

# Reasons that mean grounding ran and refused the answer; any other escalation stopped
# before grounding (or says nothing about it), so `grounded` stays None.
_GROUNDING_REFUSED: frozenset[EscalationReason] = frozenset(
    {"ungrounded", "ambiguous", "business_rule"}
)


def call_record(
    task: ExtractTask,
    reply: WorkerReply,
    model_id: str,
    *,
    prompt_version: str = PROMPT_VERSION,
) -> CallRecord | None:
    """The record of the model call behind `reply`, or None when no model was called."""
    call = getattr(reply, "call", None)
    if call is None:
        return None
    digest = None
    output = None
    grounded = None
    errors: tuple[str, ...] = ()
    if isinstance(reply, Extracted):
        # The digest compares shadow answers with the champion's: it is taken on the real
        # params, and a hash does not carry the values out.
        digest = hashlib.sha256(reply.params.model_dump_json().encode()).hexdigest()
        output = redact_value(reply.params.model_dump(mode="json"))
        grounded = True
    elif isinstance(reply, NeedsEscalation):
        output = redact_value(reply.attempt)
        grounded = False if reply.reason in _GROUNDING_REFUSED else None
        errors = tuple(_problem_text(problem) for problem in reply.errors)
    return CallRecord(
        record_id=f"{task.message_id}:call",
        model_id=task.model_id or model_id,
        task=f"{task.domain}.extract",
        tier=call.tier,
        trip_id=task.trip_id,
        step=task.step,
        valid=isinstance(reply, Extracted),
        reason=reply.reason if isinstance(reply, NeedsEscalation) else None,
        latency_ms=call.latency_ms,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        cost_usd=call.cost_usd,
        shadow=task.shadow,
        output_digest=digest,
        prompt_version=prompt_version,
        input_text=redact(task.text).text,
        output=output,
        grounded=grounded,
        errors=errors,
    )


def _problem_text(problem: Problem) -> str:
    """One line per problem; redacted, since messages quote the text ("unknown city 'X'")."""
    where = f" ({problem.field})" if problem.field else ""
    return redact(f"{problem.code}{where}: {problem.message}").text
