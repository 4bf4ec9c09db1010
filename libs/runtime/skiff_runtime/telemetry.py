"""OpenTelemetry for a Skiff process: the tracer provider, the broker middleware, and the
helpers that carry W3C trace context where FastStream does not (plain nats-py requests).

One trip is one trace: the client's submit starts it, and every hop passes `traceparent`
in NATS headers. FastStream's `NatsTelemetryMiddleware` extracts it on every subscriber and
injects it on every `broker.publish` (so `publish_durably` and `dead_letter` carry it); a
plain nats-py `request` carries it when its `headers=` come from `inject_headers()`, best
inside `producer_span(subject)`.

Export is configured only by the standard variables, never by `SKIFF_*` settings:

- `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: none set means no
  exporter. Spans are still created, so `trace_id` in logs and propagation keep working,
  but nothing is sent anywhere.
- `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`: `grpc` (the default here, as in the Python distro
  and in this repo's compose file and chart) or `http/protobuf`.
- `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` (seconds, as the Python exporters read it): default
  here `EXPORT_TIMEOUT_S`, shorter than the exporters' 10 s, so a dead collector costs
  little even at shutdown.
- `OTEL_TRACES_EXPORTER`: `otlp` (default), `console`, or `none`.
- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`,
  `OTEL_EXPORTER_OTLP_HEADERS`…, `OTEL_PROPAGATORS`, `OTEL_SDK_DISABLED`: read by the SDK.

Spans are exported by a `BatchSpanProcessor` on its own thread: a collector that is down
only drops spans (the queue is bounded), it never blocks or fails a handler.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Literal

import structlog
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_NAMESPACE,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind

TRACER_NAME = "skiff"
EXPORT_TIMEOUT_S = 2.0
NAMESPACE = "skiff"

Protocol = Literal["grpc", "http/protobuf"]

# Skiff's own span attributes (messaging.* and gen_ai.* come from the conventions).
ATTR_TRIP_ID = "skiff.trip_id"
ATTR_DOMAIN = "skiff.domain"
ATTR_TIER = "skiff.tier"
ATTR_ESCALATION_REASON = "skiff.escalation.reason"
ATTR_STEP = "skiff.step"


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def otlp_protocol(environ: Mapping[str, str] | None = None) -> Protocol:
    """The OTLP protocol the `OTEL_*` variables ask for (`grpc` when unset)."""
    env = os.environ if environ is None else environ
    value = _env(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if value in (None, "grpc"):
        return "grpc"
    if value == "http/protobuf":
        return "http/protobuf"
    raise ValueError(f"unsupported OTLP protocol {value!r}: use grpc or http/protobuf")


def span_exporter() -> SpanExporter | None:
    """The exporter the `OTEL_*` variables describe, or None when nothing is to be exported."""
    env = os.environ
    kind = (_env(env, "OTEL_TRACES_EXPORTER") or "otlp").lower()
    if kind == "none" or (_env(env, "OTEL_SDK_DISABLED") or "").lower() == "true":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ValueError(f"unsupported OTEL_TRACES_EXPORTER {kind!r}: use otlp, console or none")
    if _env(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") is None:
        return None
    # The exporters read endpoint, headers, TLS and compression from the environment
    # themselves; only the timeout gets a shorter default here.
    timeout = (
        None
        if _env(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        else EXPORT_TIMEOUT_S
    )
    if otlp_protocol(env) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(timeout=timeout)


def configure_tracing(service: str, *, set_global: bool = True) -> TracerProvider:
    """The process's tracer provider, exporting as the `OTEL_*` variables say.

    `service` names the process (`service.name`) unless `OTEL_SERVICE_NAME` is set, as the
    chart and compose file do (`skiff-<component>`). With `set_global` (what services want)
    the provider also becomes OpenTelemetry's global one, so `trace.get_tracer()` anywhere
    uses it; tests that run several "services" in one process pass False and hand the
    provider to each piece. Call `provider.shutdown()` at exit to flush what is queued.
    """
    # Defaults only: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win where they say more.
    from_env = OTELResourceDetector().detect().attributes
    defaults = {SERVICE_NAME: service, SERVICE_NAMESPACE: NAMESPACE}
    attributes = {key: value for key, value in defaults.items() if key not in from_env}
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = span_exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def telemetry_middlewares(
    provider: trace.TracerProvider | None = None,
) -> tuple[NatsTelemetryMiddleware, ...]:
    """The broker middlewares that trace every message in and out (W3C context in headers).

    Pass them to `NatsBroker(middlewares=...)`, or add them to a built broker with
    `broker.add_middleware(m)`: subscribers registered earlier use them too.
    """
    return (NatsTelemetryMiddleware(tracer_provider=provider),)


def inject_headers(
    headers: Mapping[str, str] | None = None, *, context: Context | None = None
) -> dict[str, str]:
    """`headers` plus the current (or given) trace context, for a plain nats-py publish or
    request: `await nc.request(subject, data, headers=inject_headers())`."""
    carrier = dict(headers or {})
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context a message's headers carry (an empty context when they carry none);
    attach it, or pass it as `context=` when starting a span, to continue the sender's trace."""
    return propagate.extract(dict(headers or {}))


@contextlib.contextmanager
def continued_from(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the sender's trace current for the block (for a plain nats-py subscriber)."""
    token = otel_context.attach(extract_context(headers))
    try:
        yield
    finally:
        otel_context.detach(token)


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """Skiff's tracer, from `provider` or the global one."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)


@contextlib.contextmanager
def producer_span(
    subject: str,
    *,
    provider: trace.TracerProvider | None = None,
    headers: Mapping[str, str] | None = None,
    trip_id: str | None = None,
    domain: str | None = None,
) -> Iterator[dict[str, str]]:
    """A PRODUCER span for one plain nats-py publish or request; yields the headers to send.

    The span is named like FastStream's own (`"<subject> publish"`), so a trace reads the
    same whichever client sent the message. Where no span is current (the CLI), this span
    starts the trace:

        with producer_span(subjects.TRIP_SUBMIT, trip_id=request.trip_id) as headers:
            reply = await nc.request(subjects.TRIP_SUBMIT, payload, headers=headers)
    """
    with tracer(provider).start_as_current_span(
        f"{subject} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
        },
    ) as span:
        annotate(span, trip_id=trip_id, domain=domain)
        yield inject_headers(headers)


def annotate(
    span: Span | None = None,
    *,
    trip_id: str | None = None,
    domain: str | None = None,
    tier: str | None = None,
    escalation_reason: str | None = None,
    step: str | None = None,
) -> None:
    """Set Skiff's attributes (`skiff.trip_id`, `skiff.domain`, `skiff.tier`,
    `skiff.escalation.reason`, `skiff.step`) on `span`, by default the current one; None
    values are left out. Cheap and safe when no span is recording."""
    target = span if span is not None else trace.get_current_span()
    if not target.is_recording():
        return
    for key, value in (
        (ATTR_TRIP_ID, trip_id),
        (ATTR_DOMAIN, domain),
        (ATTR_TIER, tier),
        (ATTR_ESCALATION_REASON, escalation_reason),
        (ATTR_STEP, step),
    ):
        if value is not None:
            target.set_attribute(key, value)


@contextlib.contextmanager
def trip_context(
    trip_id: str, *, domain: str | None = None, step: str | None = None
) -> Iterator[None]:
    """Inside a handler: `trip_id` (and `step`) on every log line of the block, and Skiff's
    attributes on the current span, in one call."""
    annotate(trip_id=trip_id, domain=domain, step=step)
    bound = {"trip_id": trip_id} | ({"step": step} if step is not None else {})
    with structlog.contextvars.bound_contextvars(**bound):
        yield


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits (as the logs print it), or None."""
    span_context = trace.get_current_span().get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None
