"""Tracing set-up from the standard OTEL_* variables, and the propagation helpers."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from skiff_runtime.telemetry import (
    EXPORT_TIMEOUT_S,
    annotate,
    configure_tracing,
    continued_from,
    current_trace_id,
    extract_context,
    inject_headers,
    otlp_protocol,
    producer_span,
    span_exporter,
    trip_context,
)

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_endpoint_means_no_exporter(env: pytest.MonkeyPatch) -> None:
    assert span_exporter() is None
    provider = configure_tracing("planner", set_global=False)
    # Spans still exist (log correlation, propagation); nothing is sent anywhere.
    with provider.get_tracer("t").start_as_current_span("work"):
        assert current_trace_id() is not None
    provider.shutdown()


def test_grpc_is_the_default_protocol_with_a_short_timeout(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")
    exporter = span_exporter()
    assert isinstance(exporter, GrpcExporter)
    assert exporter._timeout == EXPORT_TIMEOUT_S


def test_http_protobuf_and_the_traces_specific_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://jaeger:4318/v1/traces")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "7")
    exporter = span_exporter()
    assert isinstance(exporter, HttpExporter)
    assert exporter._client._timeout == 7.0  # the operator's value wins over ours


@pytest.mark.parametrize(
    ("kind", "expected"), [("none", type(None)), ("console", ConsoleSpanExporter)]
)
def test_otel_traces_exporter_is_honoured(
    env: pytest.MonkeyPatch, kind: str, expected: type
) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")
    env.setenv("OTEL_TRACES_EXPORTER", kind)
    assert isinstance(span_exporter(), expected)


def test_a_disabled_sdk_exports_nothing(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")
    env.setenv("OTEL_SDK_DISABLED", "true")
    assert span_exporter() is None


def test_an_unknown_protocol_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="grpc or http/protobuf"):
        otlp_protocol()


def test_otel_service_name_wins_over_the_default_name(env: pytest.MonkeyPatch) -> None:
    assert configure_tracing("planner", set_global=False).resource.attributes["service.name"] == (
        "planner"
    )
    env.setenv("OTEL_SERVICE_NAME", "skiff-planner")
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.namespace.name=prod")
    attributes = configure_tracing("planner", set_global=False).resource.attributes
    assert attributes["service.name"] == "skiff-planner"
    assert attributes["service.namespace"] == "skiff"
    assert attributes["k8s.namespace.name"] == "prod"
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=travel")
    attributes = configure_tracing("planner", set_global=False).resource.attributes
    assert attributes["service.namespace"] == "travel"


def test_headers_round_trip_the_current_trace(env: pytest.MonkeyPatch) -> None:
    provider = configure_tracing("worker", set_global=False)
    assert inject_headers({"Nats-Msg-Id": "x"}) == {"Nats-Msg-Id": "x"}  # no span, no context
    with producer_span("skiff.v1.inventory.flights.search", provider=provider) as headers:
        sent = trace.get_current_span().get_span_context()
    assert headers["traceparent"].split("-")[1:3] == [
        f"{sent.trace_id:032x}",
        f"{sent.span_id:016x}",
    ]
    received = trace.get_current_span(extract_context(headers)).get_span_context()
    assert (received.trace_id, received.span_id, received.is_remote) == (
        sent.trace_id,
        sent.span_id,
        True,
    )
    with continued_from(headers):
        assert current_trace_id() == f"{sent.trace_id:032x}"
    assert current_trace_id() is None
    provider.shutdown()


def test_annotations_land_on_the_current_span(env: pytest.MonkeyPatch) -> None:
    provider = configure_tracing("planner", set_global=False)
    with provider.get_tracer("t").start_as_current_span("handle") as span:
        annotate(tier="llm", escalation_reason="ungrounded", domain=None)
        with trip_context("trip-1", domain="hotels", step="hotels.extract"):
            pass
    assert dict(span.attributes or {}) == {  # type: ignore[attr-defined]
        "skiff.tier": "llm",
        "skiff.escalation.reason": "ungrounded",
        "skiff.trip_id": "trip-1",
        "skiff.domain": "hotels",
        "skiff.step": "hotels.extract",
    }
    annotate(trip_id="nowhere")  # no span: nothing happens, nothing fails
    provider.shutdown()
