"""Observability end to end: real OTLP export (gRPC and HTTP) to a collector implemented
here with the OTLP protobuf messages, real FastStream brokers on a real nats-server.

One trip crosses a "client" (plain nats-py request), a "planner" (FastStream; publishes with
`publish_durably` into JetStream), a "worker" (FastStream pull consumer; a traced engine
call and a plain nats-py request to the inventory) and an "inventory" (FastStream core
responder), and back to the planner's results consumer. Each process has its own tracer
provider, as in production; together they must produce one trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc  # type: ignore[import-untyped]
import httpx
import nats
import pytest
import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.sdk.trace import TracerProvider

from skiff_contracts import subjects
from skiff_contracts.domains import FlightsRequest
from skiff_contracts.events import TripReceived
from skiff_contracts.inventory import OffersFound, SearchOffers
from skiff_contracts.messages import (
    SUBMIT_REPLY,
    TASK,
    WORKER_RESULT,
    Extracted,
    ExtractTask,
    TripAccepted,
    TripRequest,
)
from skiff_inference.engine import ChatMessage, Engine, EngineError, Generation
from skiff_inference.openai_compat import OpenAICompatEngine
from skiff_inference.sglang import SGLangEngine
from skiff_inference.traced import TracedEngine
from skiff_runtime.broker import connect, make_broker, pull_inbox
from skiff_runtime.delivery import settle
from skiff_runtime.health import serving_health
from skiff_runtime.jetstream import PLANNER_RESULTS, WORKER_CONSUMERS
from skiff_runtime.logging import configure_logging
from skiff_runtime.metrics import Metrics
from skiff_runtime.nats_server import NatsServer, free_port
from skiff_runtime.publishing import publish_durably
from skiff_runtime.settings import ServiceSettings
from skiff_runtime.telemetry import (
    EXPORT_TIMEOUT_S,
    configure_tracing,
    current_trace_id,
    producer_span,
    telemetry_middlewares,
    trip_context,
)

log = structlog.get_logger()

PROMPT_MARK = "prompt-marker-7f3a"
COMPLETION_MARK = "completion-marker-9c1d"
SYSTEM = "Extract the flight request as JSON."
COMPLETION = json.dumps({"origin": "Boston", "note": COMPLETION_MARK})
MODEL = "smollm2-135m-instruct"
SERVICES = ("cli", "planner", "worker-flights", "inventory")
SUBMIT = subjects.trip_submit("cli")  # the client submits under its own name


# --- an OTLP collector, both protocols -----------------------------------------------------


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    status: int
    events: tuple[str, ...]


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


class Sink:
    """What the collector received, decoded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            requests = list(self._requests)
        out = []
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.append(
                            ReceivedSpan(
                                service=str(resource.get("service.name")),
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                                name=span.name,
                                kind=PbSpan.SpanKind.Name(span.kind),
                                attributes={a.key: _value(a.value) for a in span.attributes},
                                status=span.status.code,
                                events=tuple(e.name for e in span.events),
                            )
                        )
        return out


class _GrpcTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def Export(  # noqa: N802 (the generated service's method name)
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.sink.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.contextmanager
def grpc_collector(sink: Sink) -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    service = _GrpcTraceService(sink)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@contextlib.contextmanager
def http_collector(sink: Sink) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            sink.add(request)
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Collector:
    sink: Sink
    protocol: str
    providers: dict[str, TracerProvider] = field(default_factory=dict)

    def flush(self) -> None:
        for provider in self.providers.values():
            assert provider.force_flush(10_000)


def _otel_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, protocol: str) -> None:
    for name in ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
                 "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                 "OTEL_TRACES_SAMPLER", "OTEL_EXPORTER_OTLP_TIMEOUT",
                 "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)


@pytest.fixture(params=["grpc", "http/protobuf"])
def collector(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Collector]:
    sink = Sink()
    serve = grpc_collector if request.param == "grpc" else http_collector
    with serve(sink) as endpoint:
        _otel_env(monkeypatch, endpoint, request.param)
        collector = Collector(sink, request.param)
        collector.providers = {s: configure_tracing(s, set_global=False) for s in SERVICES}
        yield collector
        for provider in collector.providers.values():
            provider.shutdown()


# --- the flow ------------------------------------------------------------------------------


class FakeEngine:
    """Stands in for llama.cpp: the trace is about the call, not the model."""

    kind = "llamacpp"
    model = MODEL

    async def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: Mapping[str, Any],
        *,
        adapter: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        return Generation(
            value=json.loads(COMPLETION), raw=COMPLETION, tokens_in=42, tokens_out=9,
            token_logprobs=(), latency_ms=3.0, engine=self.kind, model=self.model,
        )  # fmt: skip

    async def warm_up(self, messages: Sequence[ChatMessage], schema: Mapping[str, Any]) -> None:
        pass

    async def aclose(self) -> None:
        pass


class FailingEngine(FakeEngine):
    async def generate_json(self, *args: Any, **kwargs: Any) -> Generation:
        raise EngineError("llama server: HTTP 503: loading", transient=True)


Submit = Callable[[str], Awaitable[str]]


def instrument(broker: NatsBroker, provider: TracerProvider, metrics: Metrics, name: str) -> None:
    """What each service's composition root will do, after `create_app` built the broker."""
    for middleware in telemetry_middlewares(provider):
        broker.add_middleware(middleware)
    broker.add_middleware(metrics.faststream_middleware(name))


@contextlib.asynccontextmanager
async def skiff_flow(
    nats_url: str,
    providers: Mapping[str, TracerProvider],
    metrics: Metrics,
    *,
    capture_content: bool = False,
) -> AsyncIterator[Submit]:
    """Start the four "services"; yield `submit(text) -> trip_id`, which returns once the
    planner has consumed the worker's result for that trip."""
    settings = ServiceSettings(nats_url=nats_url, metrics_port=0)
    done: dict[str, asyncio.Future[None]] = {}
    engine = TracedEngine(
        FakeEngine(), capture_content=capture_content, tracer_provider=providers["worker-flights"]
    )

    planner = make_broker(settings, "planner")

    @planner.subscriber(subjects.TRIP_SUBMIT_ALL, queue="planner")
    async def on_submit(message: NatsMessage) -> bytes:
        request = TripRequest.model_validate_json(message.body)
        trip_id = request.trip_id
        with trip_context(trip_id):
            log.info("trip accepted")
            task = ExtractTask(
                message_id=subjects.command_id(trip_id, "flights.extract", 1),
                trip_id=trip_id,
                step="flights.extract",
                domain="flights",
                text=request.text,
                reference_date=request.reference_date,
            )
            to_workers = subjects.task("flights", "extract")
            await publish_durably(
                planner,
                task,
                to_workers,
                stream=subjects.tasks_stream("flights"),
                msg_id=task.message_id,
            )
            event = TripReceived(trip_id=trip_id, seq=1, state="received", text=request.text)
            await publish_durably(
                planner, event, subjects.trip_events("cli", trip_id),
                stream=subjects.STREAM_TRIP_EVENTS, msg_id=event.message_id,
            )  # fmt: skip
        return TripAccepted(trip_id=trip_id, duplicate=False).model_dump_json().encode()

    @planner.subscriber(
        subjects.RESULTS_ALL,
        stream=JStream(subjects.STREAM_RESULTS, declare=False),
        durable=PLANNER_RESULTS.durable,
        pull_sub=PullSub(batch_size=1, timeout=0.5),
        inbox_prefix=pull_inbox(settings, "planner"),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_result(message: NatsMessage) -> None:
        async def work() -> None:
            result = WORKER_RESULT.validate_json(message.body)
            with trip_context(result.trip_id):
                log.info("result received", kind=result.kind)
            if (future := done.get(result.trip_id)) is not None and not future.done():
                future.set_result(None)

        await settle(planner, message, PLANNER_RESULTS, work, metrics=metrics)

    worker = make_broker(settings, "worker-flights")
    consumer = WORKER_CONSUMERS["flights"]
    supplier = await connect(settings, "worker-flights", "worker-flights-inventory")

    @worker.subscriber(
        consumer.filter_subject,
        stream=JStream(consumer.stream, declare=False),
        durable=consumer.durable,
        pull_sub=PullSub(batch_size=1, timeout=0.5),
        inbox_prefix=pull_inbox(settings, "worker-flights"),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_task(message: NatsMessage) -> None:
        async def work() -> None:
            task = TASK.validate_json(message.body)
            assert isinstance(task, ExtractTask)
            with (
                trip_context(task.trip_id, domain=task.domain, step=task.step),
                metrics.timed_step(task.domain, task.kind),
            ):
                messages: list[ChatMessage] = [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": task.text},
                ]
                await engine.generate_json(messages, {"type": "object"}, max_tokens=64)
                params = FlightsRequest(origin="Boston")
                search = SearchOffers(domain="flights", params=params)
                subject = subjects.inventory("flights", "search")
                with producer_span(
                    subject, provider=providers["worker-flights"], trip_id=task.trip_id
                ) as headers:
                    reply = await supplier.request(
                        subject, search.model_dump_json().encode(), timeout=5, headers=headers
                    )
                log.info(
                    "task done", offers=len(OffersFound.model_validate_json(reply.data).offers)
                )
                extracted = Extracted(
                    trip_id=task.trip_id, step=task.step, domain="flights", params=params
                )
                await publish_durably(
                    worker, extracted, subjects.result("flights"),
                    stream=subjects.STREAM_RESULTS, msg_id=f"{task.message_id}:result",
                )  # fmt: skip

        await settle(worker, message, consumer, work, metrics=metrics)

    inventory = make_broker(settings, "inventory")

    @inventory.subscriber(subjects.inventory("flights", "search"), queue=subjects.INVENTORY_QUEUE)
    async def on_search(message: NatsMessage) -> bytes:
        log.info("offers searched")
        return OffersFound(domain="flights", offers=()).model_dump_json().encode()

    brokers = {"planner": planner, "worker-flights": worker, "inventory": inventory}
    for name, broker in brokers.items():
        instrument(broker, providers[name], metrics, name)  # after the subscribers, as in main
        await broker.start()
    client = await nats.connect(nats_url)

    async def submit(text: str) -> str:
        request = TripRequest(text=text)
        done[request.trip_id] = asyncio.get_running_loop().create_future()
        with (
            structlog.contextvars.bound_contextvars(trip_id=request.trip_id),
            producer_span(SUBMIT, provider=providers["cli"], trip_id=request.trip_id) as headers,
        ):
            log.info("submitting trip")
            body = request.model_dump_json().encode()
            reply = await client.request(SUBMIT, body, timeout=10, headers=headers)
        accepted = SUBMIT_REPLY.validate_json(reply.data)
        assert isinstance(accepted, TripAccepted)
        await asyncio.wait_for(done[request.trip_id], timeout=30)
        return accepted.trip_id

    try:
        yield submit
    finally:
        await client.close()
        for broker in brokers.values():
            await broker.stop()
        await supplier.close()


def by_name(spans: Sequence[ReceivedSpan], name: str) -> ReceivedSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


def ancestors(spans: Sequence[ReceivedSpan], span: ReceivedSpan) -> list[ReceivedSpan]:
    index = {s.span_id: s for s in spans}
    chain = []
    while span.parent_id:
        span = index[span.parent_id]
        chain.append(span)
    return chain


def spans_of_trip(sink: Sink, trip_id: str, timeout_s: float = 10.0) -> list[ReceivedSpan]:
    """Every received span of the trace the trip's client span started."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = sink.spans()
        roots = [
            s for s in spans if s.attributes.get("skiff.trip_id") == trip_id and not s.parent_id
        ]
        if roots or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (root,) = roots
    return [s for s in spans if s.trace_id == root.trace_id]


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.nats
async def test_one_trip_is_one_trace_across_every_hop(
    nats_server: NatsServer, fresh_layout: Any, collector: Collector
) -> None:
    metrics = Metrics()
    async with skiff_flow(nats_server.url, collector.providers, metrics) as submit:
        trip_id = await submit(f"Boston to Zurich on the 3rd {PROMPT_MARK}")
    collector.flush()

    all_spans = collector.sink.spans()
    spans = spans_of_trip(collector.sink, trip_id)
    assert {s.trace_id for s in all_spans} == {spans[0].trace_id}, "a hop started its own trace"
    index = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if not s.parent_id]
    assert [s for s in spans if s.parent_id and s.parent_id not in index] == []
    assert {s.service for s in spans} == set(SERVICES)

    # The client starts the trace; the planner's consumer continues it.
    assert (root.service, root.name, root.kind) == (
        "cli",
        f"{SUBMIT} publish",
        "SPAN_KIND_PRODUCER",
    )
    submit_span = by_name(spans, f"{SUBMIT} process")
    assert (submit_span.service, submit_span.parent_id) == ("planner", root.span_id)
    assert submit_span.attributes["skiff.trip_id"] == trip_id

    # publish_durably (broker.publish) carried the context into JetStream.
    task_span = by_name(spans, f"{subjects.task('flights', 'extract')} process")
    assert task_span.service == "worker-flights" and task_span.kind == "SPAN_KIND_CONSUMER"
    assert submit_span in ancestors(spans, task_span)
    assert index[task_span.parent_id].service == "planner"
    assert task_span.attributes["skiff.domain"] == "flights"

    # The model call is a GenAI client span inside the worker's handling.
    chat = by_name(spans, f"chat {MODEL}")
    assert (chat.kind, chat.parent_id) == ("SPAN_KIND_CLIENT", task_span.span_id)
    assert chat.attributes == chat.attributes | {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "llama.cpp",
        "gen_ai.system": "llama.cpp",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.0,
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 9,
        "gen_ai.output.type": "json",
    }
    everything = json.dumps([s.attributes for s in spans])
    assert PROMPT_MARK not in everything and COMPLETION_MARK not in everything
    assert not any(
        k.startswith(("gen_ai.input", "gen_ai.output.messages")) for k in chat.attributes
    )

    # The plain nats-py request carried the injected headers to the inventory.
    request_span = by_name(spans, f"{subjects.inventory('flights', 'search')} publish")
    assert (request_span.service, request_span.parent_id) == ("worker-flights", task_span.span_id)
    search_span = by_name(spans, f"{subjects.inventory('flights', 'search')} process")
    assert (search_span.service, search_span.parent_id) == ("inventory", request_span.span_id)

    # And back: the worker's result reaches the planner in the same trace.
    result_span = by_name(spans, f"{subjects.result('flights')} process")
    assert result_span.service == "planner"
    assert task_span in ancestors(spans, result_span)

    # Metrics saw the same trip, with bounded labels.
    def count(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    task_subject = subjects.task("flights", "extract")
    assert count("skiff_messages_total", subject=task_subject, status="acked") == 1
    assert count("skiff_messages_total", subject=subjects.result("flights"), status="acked") == 1
    assert count("skiff_step_duration_seconds_count", domain="flights", operation="extract") == 1
    published = "faststream_published_messages_total"
    events = {"app_name": "planner", "broker": "nats", "destination": "skiff.v1.trip.events.*.*"}
    assert count(published, **events, status="success") == 1
    processed = {"app_name": "worker-flights", "broker": "nats", "handler": task_subject}
    assert count("faststream_received_processed_messages_total", **processed, status="acked") == 1


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Undo `configure_logging` after the test (it configures the whole process)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:], root.level = handlers, level


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.nats
@pytest.mark.parametrize("collector", ["grpc"], indirect=True)
async def test_every_log_line_of_the_trip_carries_its_trace(
    nats_server: NatsServer,
    fresh_layout: Any,
    collector: Collector,
    capsys: pytest.CaptureFixture[str],
    restored_logging: None,
) -> None:
    # Configured here, not in a fixture: pytest gives the test body its own stderr.
    configure_logging("observability-test", "info", "json")
    async with skiff_flow(nats_server.url, collector.providers, Metrics()) as submit:
        json_lines(capsys)  # start-up lines are not part of the trip
        trip_id = await submit("Boston to Zurich on the 3rd")
        lines = json_lines(capsys)
    collector.flush()
    trace_id = spans_of_trip(collector.sink, trip_id)[0].trace_id

    assert {line["event"] for line in lines} >= {
        "submitting trip", "trip accepted", "task done", "offers searched", "result received",
    }  # fmt: skip
    assert [line for line in lines if line.get("trace_id") != trace_id] == []
    assert all(len(line["span_id"]) == 16 for line in lines)
    bound = [line for line in lines if line["event"] != "offers searched"]  # inventory binds none
    assert [line for line in bound if line.get("trip_id") != trip_id] == []
    (done,) = [line for line in lines if line["event"] == "task done"]
    assert done["step"] == "flights.extract"


@pytest.mark.nats
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_a_dead_collector_costs_the_trip_nothing(
    nats_server: NatsServer,
    fresh_layout: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    _otel_env(monkeypatch, f"http://127.0.0.1:{free_port()}", protocol)  # nobody listens
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export (and fail) during the trip
    providers = {s: configure_tracing(s, set_global=False) for s in SERVICES}
    metrics = Metrics()
    async with skiff_flow(nats_server.url, providers, metrics) as submit:
        started = time.monotonic()
        for n in range(3):
            await submit(f"Boston to Zurich, trip {n}")
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.3)  # let the processors try, and fail, to export
    assert elapsed < 5.0, f"three trips took {elapsed:.1f}s with the collector down"
    acked = metrics.registry.get_sample_value(
        "skiff_messages_total", {"subject": subjects.result("flights"), "status": "acked"}
    )
    assert acked == 3

    # Shutting down flushes into the void: bounded by the short export timeout.
    started = time.monotonic()
    await asyncio.gather(*(asyncio.to_thread(p.shutdown) for p in providers.values()))
    assert time.monotonic() - started < 2 * EXPORT_TIMEOUT_S + 2.0
    # The exporters did try, and fail: the spans were dropped, not silently never sent.
    failures = [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert any("export" in r.getMessage().lower() for r in failures)


@pytest.mark.nats
async def test_readiness_follows_the_broker_connection(nats_server: NatsServer) -> None:
    settings = ServiceSettings(
        nats_url=nats_server.url, metrics_port=free_port(), metrics_host="127.0.0.1"
    )
    broker = make_broker(settings, "inventory")
    async with (
        serving_health(settings, lambda: True, Metrics(), broker=broker) as server,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        assert server is not None
        url = f"http://127.0.0.1:{server.port}/readyz"
        assert (await http.get(url)).status_code == 503
        await broker.start()
        assert (await http.get(url)).status_code == 200
        await broker.stop()
        assert (await http.get(url)).status_code == 503
        healthz = await http.get(f"http://127.0.0.1:{server.port}/healthz")
        assert healthz.status_code == 200


# --- engines -------------------------------------------------------------------------------

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": f"Boston to Zurich {PROMPT_MARK}"},
]


@pytest.mark.parametrize("collector", ["grpc"], indirect=True)
async def test_captured_content_is_recorded_only_when_asked(collector: Collector) -> None:
    provider = collector.providers["worker-flights"]
    quiet: Engine = TracedEngine(FakeEngine(), tracer_provider=provider)  # it is an Engine
    chatty = TracedEngine(FakeEngine(), capture_content=True, tracer_provider=provider)
    await quiet.generate_json(MESSAGES, {}, seed=7)
    await chatty.generate_json(MESSAGES, {}, adapter="flights-lora")
    collector.flush()
    first, second = sorted(
        collector.sink.spans(), key=lambda s: "gen_ai.request.seed" not in s.attributes
    )
    assert first.attributes["gen_ai.request.seed"] == 7
    assert PROMPT_MARK not in json.dumps(first.attributes)
    assert second.attributes["skiff.model.adapter"] == "flights-lora"
    assert json.loads(second.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": SYSTEM}
    ]
    (user,) = json.loads(second.attributes["gen_ai.input.messages"])
    assert user["role"] == "user" and PROMPT_MARK in user["parts"][0]["content"]
    (output,) = json.loads(second.attributes["gen_ai.output.messages"])
    assert output["role"] == "assistant" and output["finish_reason"] == "stop"
    assert COMPLETION_MARK in output["parts"][0]["content"]


@pytest.mark.parametrize("collector", ["http/protobuf"], indirect=True)
async def test_engine_errors_are_recorded_on_the_span(collector: Collector) -> None:
    engine = TracedEngine(FailingEngine(), tracer_provider=collector.providers["worker-flights"])
    with pytest.raises(EngineError):
        await engine.generate_json(MESSAGES, {})
    collector.flush()
    (span,) = collector.sink.spans()
    assert span.status == 2  # STATUS_CODE_ERROR
    assert span.events == ("exception",)
    assert span.attributes["error.type"] == "EngineError"
    assert span.attributes["skiff.engine.transient"] is True
    assert "gen_ai.usage.input_tokens" not in span.attributes


@pytest.mark.parametrize("collector", ["grpc"], indirect=True)
async def test_http_engines_send_the_trace_context(collector: Collector) -> None:
    seen: list[httpx.Headers] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        if request.url.path.endswith("/generate"):
            meta = {"prompt_tokens": 5, "completion_tokens": 2, "finish_reason": {"type": "stop"}}
            return httpx.Response(200, json={"text": "{}", "meta_info": meta})
        choice = {"message": {"content": "{}"}, "finish_reason": "stop", "logprobs": None}
        return httpx.Response(200, json={"choices": [choice], "usage": {}})

    transport = httpx.MockTransport(respond)
    provider = collector.providers["worker-flights"]
    engines: list[OpenAICompatEngine | SGLangEngine] = [
        OpenAICompatEngine("http://llm.test/v1", "big", transport=transport),
        SGLangEngine("http://sglang.test", "small", transport=transport),
    ]
    expected = []
    for engine in engines:
        with provider.get_tracer("test").start_as_current_span("handling a task"):
            await TracedEngine(engine, tracer_provider=provider).generate_json(MESSAGES, {})
            expected.append(current_trace_id())
        await engine.generate_json(MESSAGES, {})  # outside any span: nothing to propagate
        await engine.aclose()
    traced, untraced = seen[0::2], seen[1::2]
    assert all("traceparent" not in headers for headers in untraced)
    collector.flush()
    chats = {
        s.attributes["gen_ai.provider.name"]: s
        for s in collector.sink.spans()
        if s.name.startswith("chat ")
    }
    for headers, trace_id, provider_name in zip(
        traced, expected, ("openai", "sglang"), strict=True
    ):
        _version, sent_trace, sent_parent, _flags = headers["traceparent"].split("-")
        # The server joins the trip's trace, under the model span.
        assert (sent_trace, sent_parent) == (trace_id, chats[provider_name].span_id)
