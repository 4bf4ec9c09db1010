"""Prometheus metrics for a Skiff process: one registry, one `Metrics` object, methods only.

The composition root takes `process_metrics()` (or builds a `Metrics` of its own and passes
it along); `settle` counts every JetStream delivery it settles; `skiff_runtime.health`
serves the registry on `/metrics`. Labels are bounded: subjects that carry a trip id are
reported by their pattern (`skiff.v1.trip.input.*`), never one series per trip.

What each service records, and the figures derived from it (PromQL):

- throughput and failures: `skiff_messages_total{subject,status}` (acked, nacked,
  dead_lettered, poison), plus FastStream's own `faststream_*` series when its middleware
  is added (`Metrics.faststream_middleware`): per-handler durations, in-flight messages,
  publishes and their errors.
- step latency: `skiff_step_duration_seconds{domain,operation}`, e.g. p95 with
  `histogram_quantile(0.95, sum by (le, domain) (rate(skiff_step_duration_seconds_bucket[5m])))`.
- escalations: `skiff_escalations_total{reason,domain}`.
- model calls, tokens, latency and cost: `skiff_model_calls_total{tier,model,version}`,
  `skiff_model_tokens_total{tier,model,version,type}` (type = input | output, as
  `gen_ai.token.type`), `skiff_model_call_duration_seconds{tier,model}`,
  `skiff_model_cost_usd_total{tier}`.
- SLM share of resolved steps: `sum(rate(skiff_steps_resolved_total{tier="slm"}[1h])) /
  sum(rate(skiff_steps_resolved_total[1h]))`; of model calls, the same over
  `skiff_model_calls_total`.
- trips by outcome: `skiff_trips_finished_total{outcome}`; saga compare-and-set conflicts:
  `skiff_saga_conflicts_total`.
- messages refused for who sent them: `skiff_refused_total{kind}` (`foreign_reply`: a reply
  to a command the trip did not send; `foreign_input`: another owner's answer or cancel).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from faststream.nats.prometheus.provider import NatsMetricsSettingsProvider
from faststream.prometheus.middleware import PrometheusMiddleware
from nats.aio.msg import Msg
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.exposition import choose_encoder

from skiff_contracts import subjects
from skiff_contracts.messages import ModelCall

if TYPE_CHECKING:
    from faststream.message import StreamMessage
    from faststream.prometheus.types import ConsumeAttrs
    from faststream.response import PublishCommand

MessageStatus = Literal["acked", "nacked", "dead_lettered", "poison"]

# Seconds: from a grammar-cached extraction on a warm model to a slow LLM escalation.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

# Subjects whose last tokens are an owner and a trip id: one series per pattern, not per trip.
_PER_TRIP = (subjects.TRIP_INPUT_ALL, subjects.TRIP_EVENTS_ALL)
_INBOX = "_INBOX."


def subject_label(subject: str) -> str:
    """The bounded label for a subject: per-trip subjects become their `*` pattern, reply
    inboxes `_INBOX.>`, anything outside Skiff's namespace `other`."""
    for pattern in _PER_TRIP:
        if subject.startswith(pattern.removesuffix("*.*")):
            return pattern
    if subject.startswith(_INBOX):
        return f"{_INBOX}>"
    if not subject.startswith(f"{subjects.PREFIX}."):
        return "other"
    return subject


class Metrics:
    """Every Skiff metric, on one registry (a fresh one by default, with the process,
    platform and GC collectors, so two `Metrics` never clash in one test process)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, process_collectors: bool = True
    ) -> None:
        if registry is None:
            registry = CollectorRegistry(auto_describe=True)
            if process_collectors:
                for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                    registry.register(collector)
        self.registry = registry
        self._messages = Counter(
            "skiff_messages",
            "JetStream deliveries settled, by subject and outcome",
            ["subject", "status"],
            registry=registry,
        )
        self._steps = Histogram(
            "skiff_step_duration_seconds",
            "Time to handle one saga step, by domain and operation",
            ["domain", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._escalations = Counter(
            "skiff_escalations",
            "Steps a micro-SLM could not settle, by reason",
            ["reason", "domain"],
            registry=registry,
        )
        self._model_calls = Counter(
            "skiff_model_calls",
            "Model calls, by tier and model",
            ["tier", "model", "version"],
            registry=registry,
        )
        self._tokens = Counter(
            "skiff_model_tokens",
            "Model tokens, by tier, model and type (input or output)",
            ["tier", "model", "version", "type"],
            registry=registry,
        )
        self._model_latency = Histogram(
            "skiff_model_call_duration_seconds",
            "Model call latency as the engine measured it",
            ["tier", "model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._cost = Counter(
            "skiff_model_cost_usd",
            "What the model calls cost, by tier (tokens priced by the settings' table)",
            ["tier"],
            registry=registry,
        )
        self._resolved = Counter(
            "skiff_steps_resolved",
            "Extraction steps settled, by the tier whose answer was accepted",
            ["domain", "tier"],
            registry=registry,
        )
        self._trips = Counter(
            "skiff_trips_finished",
            "Trips that reached a terminal state, by outcome",
            ["outcome"],
            registry=registry,
        )
        self._conflicts = Counter(
            "skiff_saga_conflicts",
            "Saga writes that lost a compare-and-set race and were re-read",
            registry=registry,
        )
        self._refused = Counter(
            "skiff_refused",
            "Messages dropped because of who sent them, by kind",
            ["kind"],
            registry=registry,
        )

    def message(self, subject: str, status: MessageStatus) -> None:
        """One delivery settled: acked, nacked (retry later), dead_lettered (out of
        deliveries) or poison (can never succeed, dead-lettered at once)."""
        self._messages.labels(subject_label(subject), status).inc()

    def step(self, domain: str, op: str, seconds: float) -> None:
        """How long one step took (`op`: extract, hold, confirm, cancel, resolve, …)."""
        self._steps.labels(domain, op).observe(seconds)

    @contextlib.contextmanager
    def timed_step(self, domain: str, op: str) -> Iterator[None]:
        """Time the block as one step (recorded whether it returns or raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step(domain, op, time.perf_counter() - started)

    def escalation(self, reason: str, domain: str | None = None) -> None:
        """A step escalated (`reason` from the closed set of `EscalationReason`)."""
        self._escalations.labels(reason, domain or "none").inc()

    def model_call(self, call: ModelCall) -> None:
        """Count one answer's model calls, tokens, latency and cost, where they were made."""
        self._model_calls.labels(call.tier, call.model, call.version).inc(call.calls)
        self._tokens.labels(call.tier, call.model, call.version, "input").inc(call.tokens_in)
        self._tokens.labels(call.tier, call.model, call.version, "output").inc(call.tokens_out)
        self._model_latency.labels(call.tier, call.model).observe(call.latency_ms / 1000.0)
        self._cost.labels(call.tier).inc(call.cost_usd)

    def resolved(self, domain: str, tier: str) -> None:
        """An extraction step settled with the answer of `tier` (slm, llm or user)."""
        self._resolved.labels(domain, tier).inc()

    def trip_finished(self, outcome: str) -> None:
        """A trip reached a terminal state (completed, compensated, cancelled, failed)."""
        self._trips.labels(outcome).inc()

    def conflict(self) -> None:
        """A saga write lost a compare-and-set race."""
        self._conflicts.inc()

    def refused(self, kind: str) -> None:
        """A message was dropped for who sent it (`foreign_reply`, `foreign_input`,
        `foreign_submission`)."""
        self._refused.labels(kind).inc()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format the `Accept` header asks for, and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def faststream_middleware(self, service: str) -> PrometheusMiddleware[Msg, PublishCommand]:
        """FastStream's Prometheus middleware on this registry (`app_name` = `service`), with
        subjects bounded like `skiff_messages_total`. Add it to the broker next to the
        telemetry middleware."""
        return PrometheusMiddleware(
            settings_provider_factory=_bounded_subjects,
            registry=self.registry,
            app_name=service,
        )


class _BoundedSubjects(NatsMetricsSettingsProvider):
    """FastStream's NATS provider, labelling by `subject_label` instead of the raw subject."""

    __slots__ = ()

    def get_consume_attrs_from_message(self, msg: StreamMessage[Msg]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        attrs["destination_name"] = subject_label(attrs["destination_name"])
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: PublishCommand) -> str:
        return subject_label(super().get_publish_destination_name_from_cmd(cmd))


def _bounded_subjects(msg: Msg | Sequence[Msg] | None) -> _BoundedSubjects | None:
    # Batches and KV/object-store watches are not measured (Skiff uses neither for work).
    if msg is None or isinstance(msg, Msg):
        return _BoundedSubjects()
    return None


@functools.cache
def process_metrics() -> Metrics:
    """This process's `Metrics`, created on first use: what `settle` records into unless
    given another, and what `serving_health` serves by default."""
    return Metrics()
