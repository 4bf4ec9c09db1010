"""Governance contracts: model cards, schemas, aliases with history, call records, metrics.

The registry service keeps them in JetStream KV and answers on `skiff.v1.registry.<op>`
(request/reply). Workers register their model version at start-up and heartbeat; the call log
(stream CALLS, `skiff.v1.calls.<work>`) holds two kinds of record: a `CallRecord` per model
call (domain workers and the LLM tier) and an `AnswerAccepted` per domain and trip (the
planner, when the trip goes on with that answer). The planner reads aliases and cards from KV
to route each domain's extraction to its champion (or a canary, or mirrors it to a shadow).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter

from skiff_contracts.base import Frozen, new_message_id, utc_now
from skiff_contracts.messages import Tier
from skiff_contracts.problems import EscalationReason, Problem

ModelStatus = Literal["candidate", "shadow", "canary", "champion", "retired"]
AliasName = Literal["champion", "challenger"]
MoveAction = Literal["bootstrap", "promote", "rollback", "retire", "repair"]
# manual: only people move it; auto: the registry moves it on its gates; halted: an
# automatic rollback stopped it (a person decides what next).
RolloutMode = Literal["manual", "auto", "halted"]


def slug(text: str) -> str:
    """A NATS-subject-safe token for a model id."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()


def schema_hash(schema: dict[str, Any]) -> str:
    """Content hash of a JSON Schema (canonical JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


ROUTER_TASK = "router.route"  # routing: which domains a request asks for (contract router.labels)


def model_id_for(task: str, name: str, version: str) -> str:
    return f"{task}/{name}@{version}"


def slug_of(model_id: str) -> str:
    """The subject token of a model id `<task>/<name>@<version>` (equals `ModelCard.slug`)."""
    name, _, version = model_id.split("/", 1)[-1].partition("@")
    return slug(f"{name}-{version}")


class SchemaRef(Frozen):
    schema_id: str = Field(description="e.g. 'flights.draft'")
    version: int = Field(ge=1)
    sha256: str


class Evaluation(Frozen):
    """An offline evaluation, with the incumbent it was measured against in the same run."""

    dataset_id: str
    metrics: dict[str, float]
    evaluated_at: datetime = Field(default_factory=utc_now)
    baseline_model: str | None = Field(
        default=None, description="the model measured side by side (the champion at the time)"
    )
    baseline_metrics: dict[str, float] = Field(
        default_factory=dict, description="the baseline's figures on the same examples"
    )


class Calibration(Frozen):
    """Where a card's confidence threshold came from: `skiff calibrate` on labelled data."""

    threshold: float | None = Field(description="None: no threshold reached the target")
    target_accuracy: float
    kept_share: float | None = None
    kept_accuracy: float | None = None
    records: int
    data: str = Field(description="the labelled data it was chosen on")
    who: str = Field(default="", description="set by the registry: the caller's identity")
    at: datetime = Field(default_factory=utc_now)


class ModelCard(Frozen):
    """One model version serving one task."""

    model_id: str = Field(description="'<task>/<name>@<version>'")
    task: str = Field(description="'<domain>.<operation>', e.g. 'flights.extract'")
    name: str
    version: str
    base_model: str
    adapter: str | None = None
    adapter_sha256: str | None = None
    engine: str
    endpoint: str | None = None
    output_schema: SchemaRef
    prompt_version: str
    confidence_threshold: float | None = Field(
        default=None,
        description="below it a step escalates (low_confidence); this card is its only home",
    )
    calibration: Calibration | None = Field(
        default=None, description="the last `skiff calibrate` that set the threshold"
    )
    evaluations: tuple[Evaluation, ...] = ()
    status: ModelStatus = "candidate"
    canary_share: float = Field(default=0.1, ge=0, le=1)
    rollout: RolloutMode = Field(
        default="manual", description="auto: moved through shadow, canary, champion by gates"
    )
    owner: str = "unknown"
    created_at: datetime = Field(default_factory=utc_now)
    last_seen: datetime | None = None

    @property
    def slug(self) -> str:
        return slug_of(self.model_id)

    @property
    def adapter_name(self) -> str:
        """What an engine loads its adapter as: unique across tasks (one SGLang server, or
        one in-process engine, may hold every domain's adapter; the slug leaves out the task)."""
        return slug(self.model_id)


class AliasMove(Frozen):
    """One entry of a task's append-only alias history."""

    task: str
    alias: AliasName
    from_model: str | None
    to_model: str | None
    who: str = Field(
        description="the identity that made the move (authenticated), or the "
        "registry's own automation"
    )
    why: str
    at: datetime = Field(default_factory=utc_now)
    action: MoveAction | None = Field(default=None, description="what made the move")
    model_id: str | None = Field(
        default=None, description="the model whose status changed (may hold no alias at all)"
    )
    status: ModelStatus | None = Field(default=None, description="the status `model_id` took")


class TaskAliases(Frozen):
    task: str
    champion: str | None = None
    challenger: str | None = None


class CallRecord(Frozen):
    """One model call: what the registry's live metrics and the conversion loop's datasets
    are made of.

    The fields from `prompt_version` on are the full call log the flywheel curates from. They
    are optional so that compact producers stay valid; producers pass every text and value
    through PII redaction (`skiff_flywheel.redaction`) before the record leaves the process.
    Which answer a step went on with is not written here but in its own record,
    `AnswerAccepted`, naming this one by `record_id`; `final_answer` and `answered_by` are
    left from before and stay empty.
    """

    kind: Literal["call_record"] = Field(
        default="call_record", description="absent on records written before `AnswerAccepted`"
    )
    record_id: str = Field(default_factory=new_message_id)
    model_id: str
    task: str = Field(description="'<work>.extract': a domain's, or work no micro-SLM covers")
    tier: Tier
    trip_id: str
    step: str
    valid: bool = Field(description="the answer passed every check")
    reason: EscalationReason | None = None
    latency_ms: float
    tokens_in: int
    tokens_out: int
    cost_usd: float = 0.0
    shadow: bool = Field(default=False, description="a mirrored call whose answer is never used")
    output_digest: str | None = Field(
        default=None, description="hash of the params when valid: answers are compared on it"
    )
    occurred_at: datetime = Field(default_factory=utc_now)
    prompt_version: str | None = Field(default=None, description="the prompt the model was given")
    input_text: str | None = Field(
        default=None, description="the text the model read, PII redacted"
    )
    output: dict[str, Any] | None = Field(
        default=None, description="the model's params (or its draft when it escalated), redacted"
    )
    grounded: bool | None = Field(
        default=None, description="grounding accepted the answer; None when it never ran"
    )
    final_answer: dict[str, Any] | None = Field(
        default=None, description="unused: the accepted answer is an `AnswerAccepted` record"
    )
    answered_by: Tier | None = Field(
        default=None, description="unused: see `AnswerAccepted.answered_by`"
    )
    errors: tuple[str, ...] = Field(default=(), description="why the answer failed, redacted")

    @property
    def message_id(self) -> str:
        """Its `Nats-Msg-Id` (and its id in the saga's outbox, for the router's records)."""
        return self.record_id


class AnswerAccepted(Frozen):
    """The answer a trip went on with for one domain: written once, when extraction ends.

    Published by the planner through the saga's outbox, so a crash neither loses nor doubles
    it. It is the conversion loop's label: the text the answer was read from and the draft
    (the values as the user wrote them, which a micro-SLM is trained to produce), with the
    grounded params they became. Every text and value is PII-redacted before it leaves the
    planner; `output_digest` is taken on the real params, as a call record's is.
    """

    kind: Literal["answer_accepted"] = "answer_accepted"
    record_id: str = Field(description="'<trip_id>:<domain>:accepted': one per trip and domain")
    trip_id: str
    step: str = Field(description="the step whose reply was accepted, e.g. 'hotels.resolve'")
    task: str = Field(description="'<domain>.extract'")
    call_record_id: str | None = Field(
        default=None, description="the `CallRecord` of the model call whose answer this is"
    )
    answered_by: Tier = Field(
        description="slm or llm: that tier's answer as it was; user: read after the user answered"
    )
    model_id: str = Field(description="the model whose answer was accepted")
    input_text: str = Field(
        description="the text the answer was read from (the request, the user's answers, and "
        "what the trip's other steps knew when the LLM tier read it), redacted"
    )
    draft: dict[str, Any] | None = Field(
        default=None, description="the checked draft that grounded: values as written, redacted"
    )
    params: dict[str, Any] = Field(description="the grounded domain request, redacted")
    output_digest: str = Field(description="hash of the real params, as `CallRecord`'s")
    reference_date: date | None = Field(
        default=None, description="the trip's 'today': the text's relative dates resolve by it"
    )
    occurred_at: datetime = Field(default_factory=utc_now)

    @property
    def message_id(self) -> str:
        """Its `Nats-Msg-Id` (and its id in the saga's outbox)."""
        return self.record_id


def _log_kind(value: Any) -> str:
    """Records written before `AnswerAccepted` existed carry no `kind`: they are calls."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return str(kind or "call_record")


CallLogEntry = Annotated[
    Annotated[CallRecord, Tag("call_record")] | Annotated[AnswerAccepted, Tag("answer_accepted")],
    Discriminator(_log_kind),
]
CALL_LOG: TypeAdapter[CallRecord | AnswerAccepted] = TypeAdapter(CallLogEntry)
"""Parses one record of the CALLS stream, of either kind."""


class LatencyStats(Frozen):
    p50_ms: float | None = None
    p95_ms: float | None = None


class MetricsWindow(Frozen):
    calls: int = 0
    valid_rate: float | None = None
    escalation_rate: dict[str, float] = Field(default_factory=dict, description="by reason")
    latency: LatencyStats = LatencyStats()
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    shadow_calls: int = 0
    shadow_agreement: float | None = Field(
        default=None, description="share of shadow answers equal to the champion's"
    )
    answers_judged: int = Field(
        default=0, description="answers (live and shadow) of steps whose accepted answer is known"
    )
    answer_agreement: float | None = Field(
        default=None,
        description="share of the judged answers equal to the accepted answer of their trip and "
        "domain (digests compared; an escalation never agrees)",
    )


class ModelMetrics(Frozen):
    model_id: str
    total: MetricsWindow = MetricsWindow()
    window: MetricsWindow = Field(default=MetricsWindow(), description="the rolling window")
    window_s: float = 3600.0
    updated_at: datetime = Field(default_factory=utc_now)


# --- the API (request/reply on skiff.v1.registry.<op>) ----------------------------------------


class RegisterModel(Frozen):
    kind: Literal["register_model"] = "register_model"
    card: ModelCard
    json_schema: dict[str, Any] = Field(description="the model's output schema, checked")


class Heartbeat(Frozen):
    kind: Literal["heartbeat"] = "heartbeat"
    model_id: str


class Promote(Frozen):
    kind: Literal["promote"] = "promote"
    model_id: str
    to: Literal["shadow", "canary", "champion"]
    who: str = Field(default="", description="set by the registry: the caller's identity")
    why: str
    canary_share: float | None = Field(default=None, ge=0, le=1)


class Rollback(Frozen):
    kind: Literal["rollback"] = "rollback"
    task: str
    who: str = Field(default="", description="set by the registry: the caller's identity")
    why: str


class Retire(Frozen):
    kind: Literal["retire"] = "retire"
    model_id: str
    who: str = Field(default="", description="set by the registry: the caller's identity")
    why: str


class SetThreshold(Frozen):
    """Set a version's confidence threshold (what `skiff calibrate` chose)."""

    kind: Literal["set_threshold"] = "set_threshold"
    model_id: str
    calibration: Calibration


class GetModel(Frozen):
    kind: Literal["get_model"] = "get_model"
    model_id: str


class ListModels(Frozen):
    kind: Literal["list_models"] = "list_models"
    task: str | None = None


class GetHistory(Frozen):
    kind: Literal["get_history"] = "get_history"
    task: str


class ListSchemas(Frozen):
    kind: Literal["list_schemas"] = "list_schemas"


class GetSeries(Frozen):
    """The periodic snapshots of one task's live traffic (every task's when `task` is None)."""

    kind: Literal["get_series"] = "get_series"
    task: str | None = None


RegistryRequest = Annotated[
    RegisterModel
    | Heartbeat
    | Promote
    | Rollback
    | Retire
    | SetThreshold
    | GetModel
    | ListModels
    | GetHistory
    | ListSchemas
    | GetSeries,
    Field(discriminator="kind"),
]


class ModelView(Frozen):
    kind: Literal["model_view"] = "model_view"
    card: ModelCard
    metrics: ModelMetrics | None = None


class ModelList(Frozen):
    kind: Literal["model_list"] = "model_list"
    models: tuple[ModelView, ...]
    aliases: tuple[TaskAliases, ...] = ()


class History(Frozen):
    kind: Literal["history"] = "history"
    task: str
    moves: tuple[AliasMove, ...]


class SchemaEntry(Frozen):
    ref: SchemaRef
    json_schema: dict[str, Any]


class SchemaList(Frozen):
    kind: Literal["schema_list"] = "schema_list"
    schemas: tuple[SchemaEntry, ...]


class TaskPoint(Frozen):
    """One task's live answers over one interval: a point of the governance page's plots."""

    task: str
    at: datetime = Field(description="start of the interval")
    interval_s: float
    answers: int = Field(description="accepted answers (`AnswerAccepted`), whoever gave them")
    slm_calls: int
    slm_accepted: int = Field(
        description="accepted answers the micro-SLM gave on its own (not after a user's answer)"
    )
    escalations: int = Field(description="live micro-SLM calls that escalated")
    llm_calls: int = Field(default=0, description="LLM-tier calls (no_model work included)")
    slm_share: float | None = Field(default=None, description="slm_accepted / answers")
    escalation_rate: float | None = Field(default=None, description="escalations / slm_calls")
    p95_ms: float | None = Field(default=None, description="p95 latency of live micro-SLM calls")


class Series(Frozen):
    kind: Literal["series"] = "series"
    task: str | None = None
    points: tuple[TaskPoint, ...] = ()


class Ack(Frozen):
    """Success of a change: the card as it is now, and the alias move it made (if any)."""

    kind: Literal["ack"] = "ack"
    card: ModelCard | None = None
    move: AliasMove | None = None
    created: bool = False


class Refused(Frozen):
    kind: Literal["refused"] = "refused"
    code: Literal[
        "incompatible_schema",
        "not_found",
        "invalid",
        "conflict",
        "retired",
        "unavailable",
        "forbidden",
    ]
    message: str
    problems: tuple[Problem, ...] = ()


RegistryReply = Annotated[
    Ack | Refused | ModelView | ModelList | History | SchemaList | Series,
    Field(discriminator="kind"),
]
REGISTRY_REQUEST: TypeAdapter[Any] = TypeAdapter(RegistryRequest)
REGISTRY_OPERATIONS: tuple[str, ...] = (
    "register_model", "heartbeat", "promote", "rollback", "retire", "set_threshold", "get_model",
    "list_models", "get_history", "list_schemas", "get_series",
)  # fmt: skip
"""Every request kind: the `<op>` of `registry.<op>.<caller>`."""
REGISTRY_REPLY: TypeAdapter[Any] = TypeAdapter(RegistryReply)
