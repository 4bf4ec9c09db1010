"""Live metrics from the call log: per model and per task, in total and over a window (pure).

One `TaskState` per task holds everything the numbers are made of, bounded whatever the
traffic: counters and a latency sketch per model in total and per time bucket (the rolling
window is the last `window_s / bucket_s` buckets), per-bucket counts of the task's live
answers (the page's plots), the record ids already applied (a record delivered twice counts
once), and the answers waiting for their comparisons.

The log holds two kinds of record: `CallRecord` (one model call) and `AnswerAccepted` (the
answer a trip went on with for one domain). Calls make the per-model counters; accepted
answers make the task's SLM share (accepted answers the micro-SLM gave ÷ all accepted
answers, whoever gave them).

Shadow agreement: a shadow record (`shadow=True`) is compared with the live micro-SLM record
of the same trip and task (a shadow's step is `<domain>.shadow.<slug>`, the live one's
`<domain>.extract`), in whichever order they arrive, when the live one was a valid answer:
they agree when the shadow's answer is valid with the same `output_digest`.

Answer agreement: every answer of a model (live or shadow, any tier) is compared with the
accepted answer of its trip and task, in whichever order they arrive: it agrees when it was
valid with the accepted answer's `output_digest`; an escalation never agrees. Answers wait
at most `answer_ttl_s` for their accepted answer (a trip that waits longer for its user is
not judged), and at most `answer_max` steps wait at once.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from skiff_contracts.registry import (
    AnswerAccepted,
    CallRecord,
    LatencyStats,
    MetricsWindow,
    ModelMetrics,
    TaskPoint,
)
from skiff_registry.sketch import Sketch


@dataclass(frozen=True)
class Limits:
    """How much a task's state remembers (from the settings)."""

    window_s: float = 3600.0
    bucket_s: float = 60.0
    shadow_ttl_s: float = 900.0
    shadow_max: int = 2000
    dedupe_ttl_s: float = 3600.0
    dedupe_max: int = 5000
    answer_ttl_s: float = 3600.0
    answer_max: int = 2000

    def bucket(self, at: float) -> int:
        return math.floor(at / self.bucket_s)

    def oldest_bucket(self, now: float) -> int:
        """The first bucket still inside the rolling window."""
        return self.bucket(now) - round(self.window_s / self.bucket_s) + 1


class Counts(BaseModel):
    """What a model's calls add up to over some span."""

    calls: int = 0
    valid: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    shadow_calls: int = 0
    compared: int = 0
    agreed: int = 0
    judged: int = 0
    agreed_accepted: int = 0
    latency: Sketch = Field(default_factory=Sketch)

    def add(self, record: CallRecord) -> None:
        self.calls += 1
        self.valid += record.valid
        if record.reason is not None:
            self.reasons[record.reason] = self.reasons.get(record.reason, 0) + 1
        self.tokens_in += record.tokens_in
        self.tokens_out += record.tokens_out
        self.cost_usd += record.cost_usd
        self.shadow_calls += record.shadow
        self.latency.add(record.latency_ms)

    def merge(self, other: Counts) -> None:
        self.calls += other.calls
        self.valid += other.valid
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost_usd += other.cost_usd
        self.shadow_calls += other.shadow_calls
        self.compared += other.compared
        self.agreed += other.agreed
        self.judged += other.judged
        self.agreed_accepted += other.agreed_accepted
        self.latency.merge(other.latency)

    def view(self) -> MetricsWindow:
        calls = self.calls
        return MetricsWindow(
            calls=calls,
            valid_rate=self.valid / calls if calls else None,
            escalation_rate={r: n / calls for r, n in sorted(self.reasons.items())},
            latency=LatencyStats(
                p50_ms=self.latency.quantile(0.50), p95_ms=self.latency.quantile(0.95)
            ),
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            cost_usd=round(self.cost_usd, 9),
            shadow_calls=self.shadow_calls,
            shadow_agreement=self.agreed / self.compared if self.compared else None,
            answers_judged=self.judged,
            answer_agreement=self.agreed_accepted / self.judged if self.judged else None,
        )


class ModelState(BaseModel):
    model_id: str
    total: Counts = Field(default_factory=Counts)
    buckets: dict[int, Counts] = Field(default_factory=dict)


class TaskCounts(BaseModel):
    """A task's live traffic in one bucket (shadow calls excluded)."""

    answers: int = Field(default=0, description="accepted answers")
    slm_calls: int = 0
    slm_accepted: int = Field(default=0, description="accepted answers the micro-SLM gave")
    escalations: int = 0
    llm_calls: int = 0
    slm_latency: Sketch = Field(default_factory=Sketch)


class ShadowAnswer(BaseModel):
    model_id: str
    digest: str | None
    valid: bool
    bucket: int


class Waiting(BaseModel):
    """One step's live answer and the shadow answers not yet compared with it."""

    since: float
    live: bool = False
    live_valid: bool = False
    live_digest: str | None = None
    shadows: list[ShadowAnswer] = Field(default_factory=list)


class Judged(BaseModel):
    """One model's answer waiting for the accepted answer of its step (digests shortened:
    64 bits tell answers apart and keep the state small)."""

    model_id: str
    digest: str | None = Field(description="None: the call escalated, it gave no answer")
    bucket: int


class Judging(BaseModel):
    """One trip and task: its accepted answer once known, and the answers not yet judged."""

    since: float
    accepted: str | None = None
    answers: list[Judged] = Field(default_factory=list)


class TaskState(BaseModel):
    task: str
    models: dict[str, ModelState] = Field(default_factory=dict)
    buckets: dict[int, TaskCounts] = Field(default_factory=dict)
    seen: dict[str, float] = Field(default_factory=dict, description="record id hash → when")
    waiting: dict[str, Waiting] = Field(default_factory=dict)
    judging: dict[str, Judging] = Field(default_factory=dict)


LogRecord = CallRecord | AnswerAccepted


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply(state: TaskState, record: LogRecord, now: float, limits: Limits) -> bool:
    """Add one record to its task's state; False when it was applied before."""
    seen_key = _short_hash(record.record_id)
    if seen_key in state.seen:
        return False
    state.seen[seen_key] = now
    bucket = limits.bucket(min(record.occurred_at.timestamp(), now))
    in_window = bucket >= limits.oldest_bucket(now)
    if isinstance(record, AnswerAccepted):
        _accept(state, record, bucket, in_window, now, limits)
        return True
    model = state.models.setdefault(record.model_id, ModelState(model_id=record.model_id))
    model.total.add(record)
    if in_window:
        model.buckets.setdefault(bucket, Counts()).add(record)
    if not record.shadow and in_window:
        counts = state.buckets.setdefault(bucket, TaskCounts())
        if record.tier == "slm":
            counts.slm_calls += 1
            counts.escalations += not record.valid
            counts.slm_latency.add(record.latency_ms)
        elif record.tier == "llm":
            counts.llm_calls += 1
    if record.shadow or record.tier == "slm":
        _match(state, record, bucket, now, limits)
    if record.reason != "no_model":  # no model answered: nothing to judge
        _judge(state, record, bucket, now, limits)
    return True


def _accept(
    state: TaskState,
    record: AnswerAccepted,
    bucket: int,
    in_window: bool,
    now: float,
    limits: Limits,
) -> None:
    if in_window:
        counts = state.buckets.setdefault(bucket, TaskCounts())
        counts.answers += 1
        counts.slm_accepted += record.answered_by == "slm"
    judging = state.judging.setdefault(_step_key(record.trip_id, record.task), Judging(since=now))
    judging.accepted = record.output_digest[:16]
    for answer in judging.answers:
        _agree(state, answer, judging.accepted, limits.oldest_bucket(now))
    judging.answers.clear()


def _judge(state: TaskState, record: CallRecord, bucket: int, now: float, limits: Limits) -> None:
    judging = state.judging.setdefault(_step_key(record.trip_id, record.task), Judging(since=now))
    digest = record.output_digest[:16] if record.valid and record.output_digest else None
    answer = Judged(model_id=record.model_id, digest=digest, bucket=bucket)
    if judging.accepted is None:
        judging.answers.append(answer)
    else:
        _agree(state, answer, judging.accepted, limits.oldest_bucket(now))


def _agree(state: TaskState, answer: Judged, accepted: str, oldest: int) -> None:
    model = state.models.get(answer.model_id)
    if model is None:
        return
    spans = [model.total]
    if answer.bucket >= oldest and answer.bucket in model.buckets:
        spans.append(model.buckets[answer.bucket])
    for counts in spans:
        counts.judged += 1
        counts.agreed_accepted += answer.digest == accepted


def _step_key(trip_id: str, task: str) -> str:
    """One domain's extraction in one trip, whichever step (live, shadow, resolve) answered."""
    return _short_hash(f"{trip_id}|{task}")


def _match(state: TaskState, record: CallRecord, bucket: int, now: float, limits: Limits) -> None:
    key = _step_key(record.trip_id, record.task)
    waiting = state.waiting.setdefault(key, Waiting(since=now))
    if record.shadow:
        answer = ShadowAnswer(
            model_id=record.model_id, digest=record.output_digest, valid=record.valid, bucket=bucket
        )
        if waiting.live:
            _compare(state, answer, waiting, limits.oldest_bucket(now))
        else:
            waiting.shadows.append(answer)
        return
    waiting.live = True
    waiting.live_valid = record.valid and record.output_digest is not None
    waiting.live_digest = record.output_digest
    for answer in waiting.shadows:
        _compare(state, answer, waiting, limits.oldest_bucket(now))
    waiting.shadows.clear()


def _compare(state: TaskState, shadow: ShadowAnswer, live: Waiting, oldest: int) -> None:
    if not live.live_valid:
        return  # no accepted live answer to judge the shadow by
    agreed = shadow.valid and shadow.digest == live.live_digest
    model = state.models[shadow.model_id]
    spans = [model.total]
    if shadow.bucket >= oldest and shadow.bucket in model.buckets:
        spans.append(model.buckets[shadow.bucket])
    for counts in spans:
        counts.compared += 1
        counts.agreed += agreed


def prune(state: TaskState, now: float, limits: Limits) -> None:
    """Forget what fell out of the window, the ttl or the caps."""
    oldest = limits.oldest_bucket(now)
    for model in state.models.values():
        model.buckets = {b: c for b, c in model.buckets.items() if b >= oldest}
    state.buckets = {b: c for b, c in state.buckets.items() if b >= oldest}
    seen = {k: t for k, t in state.seen.items() if t >= now - limits.dedupe_ttl_s}
    if len(seen) > limits.dedupe_max:
        seen = dict(sorted(seen.items(), key=lambda kv: kv[1])[-limits.dedupe_max :])
    state.seen = seen
    waiting = {k: w for k, w in state.waiting.items() if w.since >= now - limits.shadow_ttl_s}
    if len(waiting) > limits.shadow_max:
        ordered = sorted(waiting.items(), key=lambda kv: kv[1].since)
        waiting = dict(ordered[-limits.shadow_max :])
    state.waiting = waiting
    judging = {k: j for k, j in state.judging.items() if j.since >= now - limits.answer_ttl_s}
    if len(judging) > limits.answer_max:
        judging = dict(sorted(judging.items(), key=lambda kv: kv[1].since)[-limits.answer_max :])
    state.judging = judging


def model_metrics(model: ModelState, now: float, limits: Limits) -> ModelMetrics:
    """The public numbers of one model: in total, and over the rolling window."""
    oldest = limits.oldest_bucket(now)
    window = Counts()
    for bucket, counts in model.buckets.items():
        if bucket >= oldest:
            window.merge(counts)
    return ModelMetrics(
        model_id=model.model_id,
        total=model.total.view(),
        window=window.view(),
        window_s=limits.window_s,
        updated_at=datetime.fromtimestamp(now, UTC),
    )


def bucket_start(bucket: int, limits: Limits) -> datetime:
    return datetime.fromtimestamp(bucket * limits.bucket_s, UTC)


def task_points(state: TaskState, now: float, limits: Limits) -> list[TaskPoint]:
    """One point per bucket of the window that saw live traffic (the current one included)."""
    oldest = limits.oldest_bucket(now)
    points = []
    for bucket in sorted(b for b in state.buckets if b >= oldest):
        counts = state.buckets[bucket]
        points.append(
            TaskPoint(
                task=state.task,
                at=bucket_start(bucket, limits),
                interval_s=limits.bucket_s,
                answers=counts.answers,
                slm_calls=counts.slm_calls,
                slm_accepted=counts.slm_accepted,
                escalations=counts.escalations,
                llm_calls=counts.llm_calls,
                slm_share=counts.slm_accepted / counts.answers if counts.answers else None,
                escalation_rate=counts.escalations / counts.slm_calls if counts.slm_calls else None,
                p95_ms=counts.slm_latency.quantile(0.95),
            )
        )
    return points


def merge_series(
    old: tuple[TaskPoint, ...], fresh: list[TaskPoint], since: datetime, keep: int
) -> tuple[TaskPoint, ...]:
    """Points before `since` are history; from `since` on, `fresh` replaces them."""
    kept = [point for point in old if point.at < since]
    return tuple(sorted([*kept, *fresh], key=lambda point: point.at)[-keep:])
